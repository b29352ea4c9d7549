//go:build !linux

package main

import "syscall"

// sysProcAttr puts a child in its own process group. The comparison needs
// Linux (taskset, /proc) to measure anything; this keeps the package
// building elsewhere.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// dieWithParent does nothing outside Linux.
func dieWithParent() {}
