package proxy

import "github.com/crmgate/crmgate/scope"

func newTestScope() *scope.Scope { return &scope.Scope{} }
