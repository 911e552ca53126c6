// Package chat is the domain of mqim: the MaxIM model (users, friendships,
// groups, rooms, passengers, stranger associations, chat records), its rules
// and its error codes.
//
// It imports only the standard library. Adapters depend on it, never the other
// way round:
//
//   - storage implements [Store] on Badger;
//   - rest serves the MaxIM REST API over [Service] with Fiber;
//   - broker and hooks carry the real-time protocol over MQTT (mochi) and
//     implement [Publisher];
//   - push implements [Pusher] (webhook);
//   - cmd/mqim wires everything together.
//
// Every rule (membership, limits, server-stamped ids and timestamps, retention)
// lives in [Service]; the REST handlers and the MQTT hooks call the same
// methods so the two paths store and deliver the same way.
package chat
