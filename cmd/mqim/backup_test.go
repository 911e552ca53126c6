package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// ackedSay is one QoS 1 say and when its PUBACK arrived.
type ackedSay struct {
	from, to, body string
	acked          time.Time
}

// runBin runs the mqim binary with args and env and returns its exit code
// and output.
func runBin(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mqim %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// history returns every record body of a friend conversation, paging
// backwards with the ts cutoff (pages overlap by a millisecond so that
// records sharing one are not skipped).
func history(t *testing.T, p *proc, uid, fid string, hdr map[string]string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	cutoff := time.Now().Add(time.Hour).UnixMilli()
	for {
		r := p.doWith("GET", fmt.Sprintf("/ctx/%s/friends/%s/chats?limit=100&ts=%d", uid, fid, cutoff), nil, hdr)
		expect(t, "history page", r, 200)
		var page []struct {
			Content struct{ Body string } `json:"content"`
			TS      int64                 `json:"ts"`
		}
		r.JSON(t, &page)
		for _, rec := range page {
			seen[rec.Content.Body] = true
		}
		if len(page) < 100 {
			return seen
		}
		next := page[0].TS + 1
		if next >= cutoff {
			next = page[0].TS
		}
		cutoff = next
	}
}

// Ensure an online backup taken while writers keep sending holds every
// message acknowledged before it started; that `mqim restore` rebuilds a
// server from it on which the same keys and tokens work; and that restore
// refuses a non-empty data directory and a damaged file.
func TestBackup_RoundTripUnderWriteLoad(t *testing.T) {
	singleNodeOnly(t, "backup and restore of the Badger store")
	dir := t.TempDir()
	// No rate limit: the writers send as fast as PUBACKs come.
	p := startMQIMConfig(t, dir, "mqtt:\n  rate_limit: 0\n")
	master := map[string]string{"X-ML-AppId": p.AppID, "X-ML-MasterKey": p.Master}

	const writers = 4
	for i := range writers {
		expect(t, "friends", p.doWith("POST", fmt.Sprintf("/ctx/w%d/friends/peer%d", i, i), nil, master), 201)
	}
	r := p.doWith("POST", "/tokens", map[string]any{"user": "w0", "ttl": "1h"}, master)
	expect(t, "token", r, 201)
	var tok struct{ Token string }
	r.JSON(t, &tok)

	var (
		mu    sync.Mutex
		acked []ackedSay
		stop  atomic.Bool
		wg    sync.WaitGroup
		total atomic.Int64
	)
	for i := range writers {
		from, to := fmt.Sprintf("w%d", i), fmt.Sprintf("peer%d", i)
		cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + p.MQTT).SetClientID(from + "-writer").
			SetUsername(from).SetPassword(chat.Sign(p.Key, time.Now().UnixMilli())).
			SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
		if tk := cl.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
			t.Fatalf("connect %s: %v", from, tk.Error())
		}
		defer cl.Disconnect(0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				body := fmt.Sprintf("%s-%d", from, n)
				tk := cl.Publish("say/friend/"+to, 1, false, `{"content":{"media":0,"body":"`+body+`"}}`)
				if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
					t.Errorf("publish %s: %v", body, tk.Error())
					return
				}
				now := time.Now()
				mu.Lock()
				acked = append(acked, ackedSay{from, to, body, now})
				mu.Unlock()
				total.Add(1)
			}
		}()
	}
	stopWriters := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopWriters()
	testwait.Until(t, "300 acknowledged says before the backup", 60*time.Second, func() bool { return total.Load() >= 300 })

	// The backup, by the real binary, while the writers go on. It finds
	// the server through http.addr: the data directory is locked.
	file := filepath.Join(t.TempDir(), "mqim.backup")
	cmd := exec.Command(binPath, "backup", "--out", file)
	cmd.Env = append(os.Environ(), "MQIM_DATA_DIR="+dir, "MQIM_HTTP_ADDR="+strings.TrimPrefix(p.HTTP, "http://"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	ackedAtStart := total.Load()
	if err := cmd.Run(); err != nil {
		t.Fatalf("mqim backup: %v\n%s", err, out.String())
	}
	ackedDuring := total.Load() - ackedAtStart
	if !strings.Contains(out.String(), "the server at") {
		t.Fatalf("mqim backup did not go through the server: %s", out.String())
	}
	// A few more after the backup, so that the restored store is visibly
	// older than the live one.
	until := total.Load() + 50
	testwait.Until(t, "50 more says", 60*time.Second, func() bool { return total.Load() >= until })
	stopWriters()
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}
	p.stop()

	// Restore into an empty directory and serve it.
	restored := filepath.Join(t.TempDir(), "restored")
	if code, stdout, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + restored}, "restore", "--in", file); code != 0 {
		t.Fatalf("mqim restore: exit %d\n%s%s", code, stdout, stderr)
	}
	q := startMQIM(t, restored)
	if q.AppID != p.AppID || q.Key != p.Key || q.Master != p.Master {
		t.Fatalf("restored credentials %s/%s differ from the original's", q.AppID, q.Key)
	}
	signed := map[string]string{"X-ML-AppId": q.AppID, "X-ML-Request-Sign": chat.Sign(q.Key, time.Now().UnixMilli())}
	got := map[string]map[string]bool{}
	for i := range writers {
		from, to := fmt.Sprintf("w%d", i), fmt.Sprintf("peer%d", i)
		got[from] = history(t, q, from, to, signed)
	}
	mu.Lock()
	defer mu.Unlock()
	before, after, afterKept := 0, 0, 0
	for _, a := range acked {
		switch {
		case a.acked.Before(started):
			before++
			if !got[a.from][a.body] {
				t.Errorf("%s (acknowledged %v before the backup started) is not in the restored store", a.body, started.Sub(a.acked))
			}
		default:
			after++
			if got[a.from][a.body] {
				afterKept++
			}
		}
	}
	t.Logf("%d says acknowledged before the backup started, all restored; %d during the backup; %d after it began, %d of them in the backup",
		before, ackedDuring, after, afterKept)
	if after == afterKept {
		t.Errorf("every say acknowledged after the backup began is in it (%d): the backup is not a snapshot", after)
	}
	// The token minted before the backup still works: the token secret
	// came along.
	expect(t, "token after restore", q.doWith("GET", "/ctx/w0/friends/peer0/chats", nil, map[string]string{"Authorization": "Bearer " + tok.Token}), 200)
	q.stop()

	// restore refuses a non-empty data directory and leaves it alone.
	code, _, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + restored}, "restore", "--in", file)
	if code != 1 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("restore into a non-empty dir: exit %d, %s", code, stderr)
	}
	q = startMQIM(t, restored)
	expect(t, "the refused restore left the data alone", q.do("GET", "/ctx/w0/friends/peer0/chats", nil), 200)
	q.stop()

	// A damaged file is refused and leaves nothing behind.
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.backup")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	code, _, stderr = runBin(t, []string{"MQIM_DATA_DIR=" + empty}, "restore", "--in", bad)
	if code != 1 || !strings.Contains(stderr, "backup") {
		t.Fatalf("restore of a damaged file: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Fatalf("a failed restore left %s behind (%v)", empty, err)
	}
}

// Ensure `mqim backup` with no server running opens the data directory
// itself, and that its file restores to the same store.
func TestBackup_OfflineDataDir(t *testing.T) {
	singleNodeOnly(t, "backup of an offline Badger data dir")
	dir := t.TempDir()
	p := startMQIM(t, dir)
	expect(t, "friends", p.do("POST", "/ctx/alice/friends/bob", nil), 201)
	app := p.AppID
	p.stop()

	file := filepath.Join(t.TempDir(), "offline.backup")
	code, stdout, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + dir, "MQIM_HTTP_ADDR=127.0.0.1:1"}, "backup", "--out", file)
	if code != 0 || !strings.Contains(stdout, "data directory") {
		t.Fatalf("offline backup: exit %d\n%s%s", code, stdout, stderr)
	}
	restored := filepath.Join(t.TempDir(), "r")
	if code, stdout, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + restored}, "restore", "--in", file); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	q := startMQIM(t, restored)
	if q.AppID != app {
		t.Fatalf("app id %s, want %s", q.AppID, app)
	}
	r := q.do("GET", "/ctx/alice/friends", nil)
	expect(t, "friends after restore", r, 200)
	var friends []string
	r.JSON(t, &friends)
	if len(friends) != 1 || friends[0] != "bob" {
		t.Fatalf("friends after restore = %s", r.Body)
	}
}

// Ensure `mqim backup` reports a server that refuses it, and a wrong URL,
// without leaving a file.
func TestBackup_Failures(t *testing.T) {
	singleNodeOnly(t, "backup of the Badger store")
	dir := t.TempDir()
	p := startMQIM(t, dir)
	file := filepath.Join(t.TempDir(), "x.backup")
	u, _ := url.Parse(p.HTTP)
	// The client key is not enough.
	code, _, stderr := runBin(t, []string{"MQIM_DATA_DIR=" + dir, "MQIM_MASTER_KEY=" + p.Key}, "backup", "--out", file, "--url", u.String())
	if code != 1 || !strings.Contains(stderr, "401 Unauthorized") {
		t.Fatalf("backup with the client key: exit %d, %s", code, stderr)
	}
	code, _, stderr = runBin(t, []string{"MQIM_DATA_DIR=" + dir}, "backup", "--out", file, "--url", "http://127.0.0.1:1")
	if code != 1 || stderr == "" {
		t.Fatalf("backup from nowhere: exit %d, %s", code, stderr)
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 0 {
		t.Fatalf("failed backups left %v", entries)
	}
}
