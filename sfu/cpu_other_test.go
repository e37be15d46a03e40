//go:build !unix

package sfu

import "time"

// processCPU is not measured here: the benchmark's cpu-ns metric reads 0.
func processCPU() time.Duration { return 0 }
