package app_test

// recordingMatrix holds the expectations of the recording routes (none yet).
func recordingMatrix() map[string]matrixCase { return map[string]matrixCase{} }
