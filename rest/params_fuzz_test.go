package rest

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// Ensure the query parsers (queryFlag, queryInt, queryCutoff, queryPairs,
// and chat.ParseSearch over them) never panic and refuse only with
// 5001/5018, for any raw query string a client can send.
//
// `go test` runs the seeds; `go test -run '^$' -fuzz FuzzQueryParams
// -fuzztime 60s ./rest` explores further.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{
		"detail", "detail=false&limit=10&ts=1461920236", "ts=1461920236.5&limit=-1", "ts=1e400", "ts=NaN", "ts=-9e18",
		"limit=99999999999999999999", "_skip=3&_limit=500&_sort=-ts,name&name=%E5%B0%8F", "name=小不点&&=&%zz",
		"a=1&a=2&_=x", "ids=a,b,,c",
	} {
		f.Add(s)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	type result struct {
		codes []int
	}
	app.Get("/q", func(c *fiber.Ctx) error {
		var r result
		check := func(err error, allowed ...int) {
			if err == nil {
				return
			}
			var e *chat.Error
			if !errors.As(err, &e) || !slices.Contains(allowed, e.Code) {
				r.codes = append(r.codes, -1)
				return
			}
			r.codes = append(r.codes, e.Code)
		}
		queryFlag(c, "detail")
		_, err := queryInt(c, "limit")
		check(err, chat.CodeInvalid)
		_, err = queryCutoff(c)
		check(err, chat.CodeInvalid)
		q, err := chat.ParseSearch(queryPairs(c))
		check(err, chat.CodeInvalidQuery)
		if err == nil && (q.Limit < 1 || q.Limit > chat.MaxListLimit || q.Skip < 0) {
			r.codes = append(r.codes, -1)
		}
		return c.JSON(r.codes)
	})
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/q", nil)
		req.URL.RawQuery = query
		res, err := app.Test(req, -1)
		if err != nil {
			return // not a request net/http can write
		}
		defer res.Body.Close()
		var codes []int
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&codes) != nil {
			t.Fatalf("?%s: status %d", query, res.StatusCode)
		}
		if slices.Contains(codes, -1) {
			t.Fatalf("?%s: unexpected error or bounds: %v", query, codes)
		}
	})
}

// Ensure members (the lenient "members" body value) never panics and
// returns distinct non-empty ids.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`["a",[]]`, `["a",["b"]]`, `"a"`, `null`, `[1,{"a":1},"a","a",""]`, `{`, ``, `[[[["x"]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := members(raw)
		seen := map[string]bool{}
		for _, m := range out {
			if m == "" || seen[m] {
				t.Fatalf("%s: %q", raw, out)
			}
			seen[m] = true
		}
	})
}
