// Package broker embeds the MQTT broker of mqim (mochi-mqtt v2) and carries
// the MaxIM real-time protocol of docs/protocol.md over it.
//
// It owns:
//   - the listeners: MQTT over TCP, TLS, WebSocket on a path (/mqtt), each
//     with a connection cap, a deadline for the CONNECT packet and a recover
//     that closes only the connection whose handler panicked;
//   - mochi's capabilities, every one set on purpose ([Options]);
//   - the topic scheme: send topics say/{kind}/{id}, inboxes users/{id}/{event}
//     and passengers/{id}/{event} ([ParseSendTopic], [InboxTopic],
//     [InboxAllowed]);
//   - [chat.Publisher] on MQTT ([Server.Publish], [Server.PublishSession]).
//
// The rules (login, ACL, say, presence) are mochi hooks in package hooks,
// which cmd/mqim adds with [Server.AddHook]; this package never imports them.
package broker
