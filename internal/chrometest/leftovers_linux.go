package chrometest

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
)

// killLeftovers kills the processes that still run with the user data
// directory profile: Chromium's child processes (zygote, renderers, the
// GPU and network processes) can outlive the browser process for a moment
// when it is killed, and write into the profile while the test removes it.
// Every one of them has --user-data-dir=profile on its command line, and
// the directory is unique to one test, so nothing else matches. It looks
// until three passes in a row find nothing, for at most five seconds.
func killLeftovers(profile string) {
	want := []byte("--user-data-dir=" + profile)
	deadline := time.Now().Add(5 * time.Second)
	for quiet := 0; quiet < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if killUsing(want) == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// killUsing sends SIGKILL to every process with the argument arg and
// returns how many it found.
func killUsing(arg []byte) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for a := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(a, arg) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				n++
				break
			}
		}
	}
	return n
}
