// Package conformance replays Mosquitto's byte-level MQTT message-sequence
// catalogue (testdata/mosquitto/, 1,826 cases) against a
// broker and reports, per case, whether it passed, failed, hung or crashed
// the broker.
//
// The pieces:
//
//   - [ParsePayload] reads the catalogue's payload notation, [LoadDir] and
//     [ParseFile] its JSON files into [Case] values;
//   - [RunCase] runs one case on a fresh TCP connection, every read and
//     write bounded by a timeout;
//   - [Runner] runs a whole catalogue concurrently, keeping cases that
//     could disturb each other in catalogue order, checks after every case
//     that the [Broker] still accepts connections, and, for a broker it
//     owns ([Process]), restarts it and finds which case killed it;
//   - [Report] tallies the results per file and renders them as Markdown.
//
// The runner is "fair" in the sense of the catalogue's README: the default
// CONNACK is checked by packet type and return code only, since its
// properties are the broker's own, and every other expected byte is
// compared exactly. A failure is a place to look, not automatically a bug;
// a hang or a crash always is. docs/conformance.md has the results for
// mochi, Mosquitto and mqim and how to run them.
package conformance
