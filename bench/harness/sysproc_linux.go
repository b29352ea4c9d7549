package main

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel
// kill it if the harness dies first (a second Ctrl-C, a kill -9), so no
// server outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// prSetPdeathsig is PR_SET_PDEATHSIG from <linux/prctl.h>.
const prSetPdeathsig = 1

// dieWithParent asks the kernel for SIGTERM when the harness's parent
// ends. bench/run starts the harness through `go run`, which passes
// Ctrl-C on but dies of SIGTERM without telling its child: this turns that
// into an orderly shutdown that still stops every server.
func dieWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
}
