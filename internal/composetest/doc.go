// Package composetest holds the chaos suite against the Compose cluster of
// docker-compose.yml: it builds the static binaries and the FROM-scratch
// image, brings the cluster up, and runs three scenarios under failing-over
// writers: members killed and restarted with docker, a minority cut off
// with docker network disconnect, and a scale-out from 3 to 6 members and
// back. It skips, saying why, when no Docker engine answers. It has no code
// outside its test.
package composetest
