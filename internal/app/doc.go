// Package app is OpenVisit's composition root: it wires the roles into one
// process. It opens the pool, applies migrations, loads keys, builds the
// control plane (signaling), the media node (sfu) and the recorder
// (recording), and serves them over HTTPS. cmd/openvisit calls it; so do the
// end-to-end tests.
//
// Imports point one way, down:
//
//	cmd/openvisit
//	  -> internal/app                    (this package: the wiring)
//	    -> signaling, sfu, recording     (the three roles)
//	      -> internal/*, sfu/*, recording/*, web
//	         (domain and infrastructure: store, audit, access, token, keys, ...)
//
// Only this package may import the three top-level role packages, with
// cmd/ (the binary) and the test harnesses internal/e2e and internal/cluster,
// which start whole processes. Nothing below them imports upward, and the
// roles do not import each other: the recorder reaches the media node over
// the same protocol a browser uses, and the control plane reaches both
// through what this package hands it. (One edge remains: signaling uses
// recording.Library for playback; see allowedSideways in imports_test.go.)
// TestImportDirection enforces all of this with the real import graph.
package app
