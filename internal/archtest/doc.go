// Package archtest holds the tests that keep the layout of
// docs/architecture.md true: imports point down the stack (wire, store and
// membership import nothing of ours; sync only those three; nothing
// imports cmd), only test kits (packages whose names end in "test") import
// "testing", and neither binary links it. The rules are checked with
// `go list`, so they fail the moment an import breaks them. It has no code
// outside its tests.
package archtest
