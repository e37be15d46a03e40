//go:build !linux

package loadtest

func gsoControl(int) []byte { return nil }

const gsoSupported = false
