//go:build !linux

package policy

// processCPU is not measured outside Linux.
func processCPU() int64 { return 0 }

// childCPU is not measured outside Linux.
func childCPU(int) int64 { return 0 }
