package broker

import (
	"github.com/mochi-mqtt/server/v2/packets"
)

// dropDollar is the framer's policy for a valid PUBLISH to a topic that
// starts with $: such topics are the server's ($SYS) or not topics at all
// ($share/...), so the message is dropped here, where mochi would drop it
// without any acknowledgement, leaving a QoS 1/2 sender waiting forever.
// MQTT 5 refuses it as "not authorised"; MQTT 3.1.1 cannot refuse and
// acknowledges positively [MQTT-3.3.5-2], as Mosquitto does. n is the
// packet's length, fixed header included; id its packet id.
func (f *framer) dropDollar(b0 byte, n int, id uint16) error {
	if err := f.fill(n); err != nil {
		return err
	}
	f.r += n
	f.compact()
	qos := (b0 >> 1) & 3
	if qos == 0 {
		return nil
	}
	ack := []byte{packets.Puback << 4, 2, byte(id >> 8), byte(id), packets.ErrNotAuthorized.Code}
	if qos == 2 {
		ack[0] = packets.Pubrec << 4
	}
	if f.sess.Version == 5 {
		ack[1] = 3
	} else {
		ack = ack[:4]
	}
	if f.clientMax != 0 && uint32(len(ack)) > f.clientMax {
		return nil // [MQTT-3.1.2-24]
	}
	_, err := f.Write(ack)
	return err
}
