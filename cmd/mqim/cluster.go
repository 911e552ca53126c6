package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/cluster"
	"github.com/mqim/mqim/hooks"
)

// clusterPart is this process's node of a cluster (cluster.nats_url;
// docs/scaleout.md); it holds nil when the process is the whole server.
type clusterPart struct {
	node     atomic.Pointer[cluster.Node]
	held     heldSessions
	sessions atomic.Pointer[hooks.Sessions] // the broker's, for GiveUp
}

// sessionCluster is the node as hooks.SessionCluster (persistent sessions
// moving between nodes); before the node joins (the broker starts first)
// there is nobody to ask: the store is the only holder.
type sessionCluster struct{ c *clusterPart }

func (s sessionCluster) TakeSession(ctx context.Context, clientID string, id chat.Identity, clean bool) (bool, error) {
	if n := s.c.node.Load(); n != nil {
		return n.TakeSession(ctx, clientID, id, clean)
	}
	return false, nil
}

func (s sessionCluster) RemoteHeld(id chat.Identity) int {
	if n := s.c.node.Load(); n != nil {
		return n.RemoteHeld(id)
	}
	return 0
}

func (s sessionCluster) StoreSession(ctx context.Context, clientID string, id chat.Identity) error {
	if n := s.c.node.Load(); n != nil {
		return n.StoreSession(ctx, clientID, id)
	}
	return nil
}

func (s sessionCluster) Queued(id chat.Identity, events []chat.QueuedEvent) {
	if n := s.c.node.Load(); n != nil {
		n.Queued(id, events)
	}
}

// storeState is cluster.Options.StoreState over the broker's Sessions hook.
func (c *clusterPart) storeState(clientID string, id chat.Identity) bool {
	if s := c.sessions.Load(); s != nil {
		return s.StoreState(clientID, id)
	}
	return false
}

// giveUp is cluster.Options.GiveUp over the broker's Sessions hook.
func (c *clusterPart) giveUp(clientID string, id chat.Identity, clean bool) (held, refused bool) {
	if s := c.sessions.Load(); s != nil {
		return s.GiveUp(clientID, id, clean)
	}
	return false, false
}

// heldSessions is the broker's count of persistent sessions per identity
// (hooks.Options.Held), handed to the node once it joins: the broker
// restores stored sessions before the node exists.
type heldSessions struct {
	mu   sync.Mutex
	n    map[chat.Identity]int
	node *cluster.Node
}

func (h *heldSessions) set(id chat.Identity, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[chat.Identity]int{}
	}
	if n > 0 {
		h.n[id] = n
	} else {
		delete(h.n, id)
	}
	if h.node != nil {
		h.node.SetHeld(id, n)
	}
}

func (h *heldSessions) attach(node *cluster.Node) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.node = node
	if node == nil {
		return
	}
	for id, n := range h.n {
		node.SetHeld(id, n)
	}
}

// validate checks the cluster keys.
func (c *ClusterConfig) validate(storageDriver string) []error {
	var errs []error
	if strings.ContainsAny(c.NodeID, " \t\r\n*>") {
		errs = append(errs, fmt.Errorf("cluster.node_id %q: no white space, * or >", c.NodeID))
	}
	// Badger is one process's directory: nodes cannot share it.
	if c.NATSURL != "" && storageDriver != "postgres" {
		errs = append(errs, errors.New("cluster.nats_url: a cluster needs storage.driver: postgres (nodes must share one store)"))
	}
	return errs
}

// nodeID returns cluster.node_id, or the host name and the MQTT port.
func (m *Main) nodeID() string {
	if id := m.Config.Cluster.NodeID; id != "" {
		return id
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "mqim"
	}
	_, port, _ := net.SplitHostPort(m.Config.MQTT.TCPAddr)
	if a := m.mqttAddr(broker.ListenerTCP); a != nil {
		_, port, _ = net.SplitHostPort(a.String())
	}
	return host + ":" + port
}

// startCluster joins the cluster when cluster.nats_url is set: the node
// becomes the Service's Publisher and Connections (over the local ones)
// and the cluster side of its presence and membership changes. With no
// URL nothing changes: no NATS code is on any path.
func (m *Main) startCluster(ctx context.Context) error {
	c := m.Config.Cluster
	if c.NATSURL == "" {
		return nil
	}
	b := m.mqtt.broker
	n, err := cluster.Join(ctx, cluster.Options{
		URL: c.NATSURL, NodeID: m.nodeID(), App: m.Config.App.ID, Service: m.Service,
		TakeOver:   func(clientID string) bool { return hooks.TakeOver(b, clientID) },
		GiveUp:     m.cluster.giveUp,
		StoreState: m.cluster.storeState,
		Log:        m.Log.With().Str("component", "cluster").Logger(),
	})
	if err != nil {
		return err
	}
	n.Wire(m.Service.Publisher, m.Service.Connections)
	m.cluster.node.Store(n)
	m.cluster.held.attach(n)
	m.Log.Info().Str("node", n.ID()).Msg("joined the cluster")
	return nil
}

// closeCluster leaves the cluster, after the broker closed (its sessions'
// ends have crossed to the other nodes).
func (m *Main) closeCluster() {
	if n := m.cluster.node.Swap(nil); n != nil {
		m.cluster.held.attach(nil)
		n.Close()
	}
}

// remoteSessions is the number of sessions of id on the other nodes (0
// without a cluster), for mqtt.max_connections_per_user across nodes.
func (m *Main) remoteSessions(id chat.Identity) int {
	if n := m.cluster.node.Load(); n != nil {
		return n.RemoteSessions(id)
	}
	return 0
}
