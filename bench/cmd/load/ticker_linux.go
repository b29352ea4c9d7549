package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// ticker wakes the dispatcher on a fixed period with the precision of a
// kernel timer. Go's own timers cannot pace a sub-millisecond schedule: a
// process whose goroutines are all waiting sleeps in epoll_wait, whose
// timeout is in whole milliseconds, so a 200 µs timer fires up to 1 ms
// late. A timerfd is a file that becomes readable when the timer expires,
// so the same epoll_wait returns on time.
type ticker struct{ f *os.File }

const clockMonotonic = 1

// newTicker starts a ticker whose first tick is after first and then every
// every.
func newTicker(first, every time.Duration) (*ticker, error) {
	// TFD_NONBLOCK and TFD_CLOEXEC are defined as O_NONBLOCK and O_CLOEXEC.
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, fmt.Errorf("timerfd_create: %w", errno)
	}
	spec := [2]syscall.Timespec{ // struct itimerspec: it_interval, it_value
		syscall.NsecToTimespec(int64(every)),
		syscall.NsecToTimespec(max(int64(first), 1)), // zero would disarm it
	}
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("timerfd_settime: %w", errno)
	}
	// A non-blocking descriptor makes os.NewFile use the runtime's poller.
	return &ticker{f: os.NewFile(fd, "timerfd")}, nil
}

// wait blocks until the next tick. It fails once stop has been called.
func (t *ticker) wait() error {
	var expirations [8]byte
	_, err := t.f.Read(expirations[:])
	return err
}

// stop ends the ticker and wakes a pending wait; it may be called from any
// goroutine, more than once.
func (t *ticker) stop() { _ = t.f.Close() }
