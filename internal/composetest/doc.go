// Package composetest holds the chaos suite against the Compose cluster of
// docker-compose.yml: it builds the static binaries and the FROM-scratch
// image, brings the cluster up, and runs three scenarios under failing-over
// writers: members killed and restarted with docker, a minority cut off
// with docker network disconnect, and a scale-out from 3 to 6 members and
// back. It skips, saying why, when no Docker engine answers. It has no code
// outside its test, which builds only with -tags slow (the full suite).
//
// It reaches the members on the loopback ports docker-compose.yml
// publishes (9001-9003, HTTP 8081-8083), as a user of the Compose file
// would: those are part of what it tests, so they are fixed rather than
// picked, and a port already taken fails `docker compose up` with a clear
// error. The Compose file refuses to start without a gossip key (`make
// compose-key` writes one to .env); the suite passes a fresh one in
// CONTACT_GOSSIP_KEY and checks that the members report keyed gossip.
package composetest
