//go:build !unix

package opabin

import "os/exec"

// lock does not lock outside Unix: concurrent builds each build, and the
// last rename wins.
func lock(string) (func(), error) { return func() {}, nil }

// setGroup leaves cmd as it is: cancellation ends the go command only.
func setGroup(*exec.Cmd) {}
