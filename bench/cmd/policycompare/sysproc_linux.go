package main

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel
// kill it if this program dies first (a second Ctrl-C, a kill -9), so no
// OPA server outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// prSetPdeathsig is PR_SET_PDEATHSIG from <linux/prctl.h>.
const prSetPdeathsig = 1

// dieWithParent asks the kernel for SIGTERM when this program's parent
// ends. `make bench-policy` starts it through `go run`, which passes
// Ctrl-C on but dies of SIGTERM without telling its child: this turns that
// into an orderly shutdown that still stops the OPA server.
func dieWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
}
