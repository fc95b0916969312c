// Package e2e holds end-to-end tests of `ferry serve` with real headless
// Chromium browsers on both ends: the browser client sends and receives
// real files peer to peer through the real server (signaling and the
// bundled TURN relay), and the tests compare the files' hashes.
package e2e
