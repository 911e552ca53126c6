package rest

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// pathParam returns route parameter name, URL-decoded: clients may encode
// ids in paths (docs/maxim.md §3.0). Fiber hands parameters over raw.
func pathParam(c *fiber.Ctx, name string) (string, error) {
	raw := c.Params(name)
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", chat.Errorf(chat.CodeInvalid, "bad escape in %s", name)
	}
	return v, nil
}

// pathParams decodes several route parameters.
func pathParams(c *fiber.Ctx, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		v, err := pathParam(c, n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// queryFlag reports whether a boolean flag is set. SDKs send it valueless
// (?detail, &detail); any value but "false" or "0" counts as set.
func queryFlag(c *fiber.Ctx, name string) bool {
	args := c.Context().QueryArgs()
	if !args.Has(name) {
		return false
	}
	v := strings.ToLower(strings.TrimSpace(string(args.Peek(name))))
	return v != "false" && v != "0"
}

// queryInt returns an integer query parameter; absent or empty is 0.
func queryInt(c *fiber.Ctx, name string) (int, error) {
	v := strings.TrimSpace(string(c.Context().QueryArgs().Peek(name)))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, chat.Errorf(chat.CodeInvalid, "%s must be an integer", name)
	}
	return n, nil
}

// queryCutoff returns the history cutoff ts: absent is 0 (now). A
// fractional value is accepted as seconds or ms, since the iOS API takes
// an NSTimeInterval; chat.NormalizeCutoff does the rest.
func queryCutoff(c *fiber.Ctx) (int64, error) {
	v := strings.TrimSpace(string(c.Context().QueryArgs().Peek("ts")))
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f > 1e18 || f < -1e18 {
		return 0, chat.Errorf(chat.CodeInvalid, "ts must be a time in ms")
	}
	if f > 0 && f < 1e11 {
		f *= 1000
	}
	return int64(f), nil
}

// queryPairs returns the decoded query parameters in request order.
// Values may arrive unencoded (?name=小不点): fasthttp passes such bytes
// through as they are.
func queryPairs(c *fiber.Ctx) [][2]string {
	var out [][2]string
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		out = append(out, [2]string{string(k), string(v)})
	})
	return out
}

// body returns the request body, refusing one past BodyLimit with
// 413/5010. Bodies are streamed (server.go), so it reads at most
// BodyLimit+1 bytes whatever the client sends; c.Body() would read it all.
func (s *Server) body(c *fiber.Ctx) ([]byte, error) {
	if b, ok := c.Locals(localBody).([]byte); ok {
		return b, nil // read before, by the access policy
	}
	limit := s.opts.BodyLimit
	tooLarge := errBodyTooLarge(limit)
	if c.Request().Header.ContentLength() > limit {
		return nil, tooLarge
	}
	rs := c.Context().RequestBodyStream()
	if rs == nil {
		if b := c.Body(); len(b) <= limit {
			return b, nil
		}
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(rs, int64(limit)+1))
	if err != nil {
		return nil, chat.Errorf(chat.CodeInvalid, "cannot read the request body")
	}
	if len(b) > limit {
		return nil, tooLarge
	}
	c.Locals(localBodyRead, true)
	c.Locals(localBody, b)
	return b, nil
}

// localBody is the c.Locals key of a request body already read.
const localBody = "mqim.body"

// errBodyTooLarge is the answer to a JSON body past BodyLimit.
func errBodyTooLarge(limit int) error {
	return &statusError{status: fiber.StatusRequestEntityTooLarge, err: chat.Errorf(chat.CodeTooLong, "request body larger than %d bytes", limit)}
}

// emptyJSON reports whether a body carries nothing: no bytes, only
// whitespace, or null (SDK-JS4 posts JSON.stringify(undefined) or null).
func emptyJSON(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) == 0 || string(t) == "null"
}

// readObject decodes a JSON object body. An empty body is {}; anything
// other than an object is 400/5001.
func (s *Server) readObject(c *fiber.Ctx) (map[string]json.RawMessage, error) {
	b, err := s.body(c)
	if err != nil {
		return nil, err
	}
	if emptyJSON(b) {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, chat.Errorf(chat.CodeInvalid, "body must be a JSON object")
	}
	return m, nil
}

// readAttributes decodes an attributes body (empty is {}).
func (s *Server) readAttributes(c *fiber.Ctx) (chat.Attributes, error) {
	m, err := s.readObject(c)
	if err != nil {
		return nil, err
	}
	return chat.Attributes(m), nil
}

// members decodes a "members" value leniently: nested arrays, [] entries
// and non-strings are tolerated (chat.NormalizeMembers). A missing or null
// value is nil.
func members(raw json.RawMessage) []string {
	if emptyJSON(raw) {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return []string{}
	}
	return chat.NormalizeMembers(v)
}

// readMembers decodes the {"members":[...]} body of member add and remove.
func (s *Server) readMembers(c *fiber.Ctx) ([]string, error) {
	m, err := s.readObject(c)
	if err != nil {
		return nil, err
	}
	return members(m["members"]), nil
}

// stringField decodes an optional string field: absent or null is "", a
// value that is not a string is 400/5001.
func stringField(m map[string]json.RawMessage, name string) (string, error) {
	raw := m[name]
	if emptyJSON(raw) {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", chat.Errorf(chat.CodeInvalid, "%s must be a string", name)
	}
	return v, nil
}

// attributesField decodes an optional "attributes" object field.
func attributesField(m map[string]json.RawMessage) (chat.Attributes, error) {
	raw := m["attributes"]
	if emptyJSON(raw) {
		return chat.Attributes{}, nil
	}
	var a chat.Attributes
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, chat.Errorf(chat.CodeInvalid, "attributes must be a JSON object")
	}
	return a, nil
}

// nameIntoAttributes maps the top-level "name" of SDK-JS0 create and update
// bodies to attributes.name (docs/maxim.md §8.12).
func nameIntoAttributes(m map[string]json.RawMessage, attrs chat.Attributes) chat.Attributes {
	if raw, ok := m["name"]; ok && !emptyJSON(raw) {
		attrs = attrs.Clone()
		attrs["name"] = raw
	}
	return attrs
}

// created answers 201 with an empty body.
func created(c *fiber.Ctx) error {
	c.Status(fiber.StatusCreated)
	return nil
}

// noContent answers 204.
func noContent(c *fiber.Ctx) error {
	c.Status(fiber.StatusNoContent)
	return nil
}

// recordDTO is a MaxIM ChatRecord (docs/maxim.md §7), plus "recalled"
// (then without content) and "edited" (ms of the latest edit).
type recordDTO struct {
	Speaker  string        `json:"speaker"`
	Content  *chat.Content `json:"content,omitempty"`
	TS       int64         `json:"ts"`
	Remark   string        `json:"remark,omitempty"`
	Recalled bool          `json:"recalled,omitempty"`
	Edited   int64         `json:"edited,omitempty"`
}

func toRecord(r *chat.Record) *recordDTO {
	if r == nil {
		return nil
	}
	d := &recordDTO{Speaker: r.Speaker, TS: r.TS, Remark: r.Remark, Recalled: r.Recalled, Edited: r.Edited}
	if !r.Recalled {
		c := r.Content
		d.Content = &c
	}
	return d
}

// historyRecordDTO is a ChatRecord of a history page: mqim adds the
// per-conversation seq and the message id, which MaxIM clients ignore.
type historyRecordDTO struct {
	recordDTO
	Seq uint64 `json:"seq,omitempty"`
	ID  string `json:"id,omitempty"`
}

func toRecords(rs []chat.Record) []historyRecordDTO {
	out := make([]historyRecordDTO, 0, len(rs))
	for i := range rs {
		out = append(out, historyRecordDTO{*toRecord(&rs[i]), rs[i].Seq, rs[i].ID})
	}
	return out
}

// history answers a history query (U11, U17, G15, P3): ts and limit from
// the query, or, with after=<seq>, the catch-up page of getAfter (records
// with seq > after, oldest first).
func history(c *fiber.Ctx, get func(ts int64, limit int) ([]chat.Record, error),
	getAfter func(after uint64, limit int) ([]chat.Record, error)) error {
	limit, err := queryInt(c, "limit")
	if err != nil {
		return err
	}
	if v := strings.TrimSpace(string(c.Context().QueryArgs().Peek("after"))); v != "" {
		after, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return chat.Errorf(chat.CodeInvalid, "after must be a sequence number")
		}
		recs, err := getAfter(after, limit)
		if err != nil {
			return err
		}
		return c.JSON(toRecords(recs))
	}
	ts, err := queryCutoff(c)
	if err != nil {
		return err
	}
	recs, err := get(ts, limit)
	if err != nil {
		return err
	}
	return c.JSON(toRecords(recs))
}
