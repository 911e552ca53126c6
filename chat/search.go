package chat

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// SearchQuery is an attribute search over users, groups or rooms
// (docs/maxim.md §5.1). Build it with ParseSearch.
type SearchQuery struct {
	Skip  int
	Limit int
	Sort  []SortKey
	// Filters must all match (AND). A filter matches when the attribute's
	// text form (AttributeText) equals Value.
	Filters []Filter
}

// SortKey is one key of _sort. Key "ts" and "id" name the record's own
// fields; any other key names an attribute.
type SortKey struct {
	Key  string
	Desc bool
}

// Filter is one attribute equality constraint.
type Filter struct {
	Name  string
	Value string
}

// ParseSearch builds a SearchQuery from decoded query parameters in request
// order. _skip, _limit and _sort are the paging and order controls; any
// other name starting with "_" is reserved and ignored; every remaining
// parameter is an attribute filter. A _skip or _limit that is not an integer
// returns CodeInvalidQuery.
func ParseSearch(params [][2]string) (SearchQuery, error) {
	q := SearchQuery{Limit: DefaultListLimit}
	for _, p := range params {
		name, value := p[0], p[1]
		switch {
		case name == "_skip":
			n, err := parseQueryInt(name, value)
			if err != nil {
				return q, err
			}
			q.Skip = max(n, 0)
		case name == "_limit":
			n, err := parseQueryInt(name, value)
			if err != nil {
				return q, err
			}
			q.Limit = NormalizeLimit(n)
		case name == "_sort":
			q.Sort = ParseSort(value)
		case strings.HasPrefix(name, "_") || name == "":
			// Reserved for future controls: never a filter.
		default:
			q.Filters = append(q.Filters, Filter{Name: name, Value: value})
		}
	}
	return q, nil
}

// ParseSort parses a _sort value: comma-separated keys, "-" prefix for
// descending ("score,-age"). Empty keys are skipped.
func ParseSort(s string) []SortKey {
	var keys []SortKey
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		desc := strings.HasPrefix(k, "-")
		k = strings.TrimPrefix(k, "-")
		if k == "" {
			continue
		}
		keys = append(keys, SortKey{Key: k, Desc: desc})
	}
	return keys
}

func parseQueryInt(name, value string) (int, error) {
	if value == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		return 0, Errorf(CodeInvalidQuery, "%s must be an integer", name)
	}
	return n, nil
}

func (q SearchQuery) matches(attrs Attributes) bool {
	for _, f := range q.Filters {
		raw, ok := attrs[f.Name]
		if !ok {
			return false
		}
		text, ok := AttributeText(raw)
		if !ok || text != f.Value {
			return false
		}
	}
	return true
}

// searchable is what sorting needs of a record.
type searchable struct {
	id    string
	ts    int64
	attrs Attributes
}

// sortValue is a decoded sort key value. Values of different JSON types
// order numbers < strings < booleans < anything else; a missing value sorts
// after every present one, in both directions.
type sortValue struct {
	missing bool
	rank    int
	num     float64
	str     string
}

func keyValue(r searchable, key string) sortValue {
	switch key {
	case "ts":
		return sortValue{num: float64(r.ts)}
	case "id":
		return sortValue{rank: 1, str: r.id}
	}
	raw, ok := r.attrs[key]
	if !ok {
		return sortValue{missing: true}
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return sortValue{missing: true}
	}
	switch t := v.(type) {
	case float64:
		return sortValue{num: t}
	case string:
		return sortValue{rank: 1, str: t}
	case bool:
		if t {
			return sortValue{rank: 2, num: 1}
		}
		return sortValue{rank: 2}
	}
	return sortValue{rank: 3, str: string(raw)}
}

func compareValues(a, b sortValue) int {
	switch {
	case a.rank != b.rank:
		return a.rank - b.rank
	case a.num < b.num:
		return -1
	case a.num > b.num:
		return 1
	}
	return strings.Compare(a.str, b.str)
}

// pageSorted orders items by q.Sort (then ts, then id, so the order is
// total and pages are stable) and returns the page q asks for.
func pageSorted[T any](items []T, q SearchQuery, get func(T) searchable) []T {
	type entry struct {
		item T
		rec  searchable
		vals []sortValue
	}
	es := make([]entry, len(items))
	for i, it := range items {
		r := get(it)
		vals := make([]sortValue, len(q.Sort))
		for j, k := range q.Sort {
			vals[j] = keyValue(r, k.Key)
		}
		es[i] = entry{it, r, vals}
	}
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		for k, key := range q.Sort {
			va, vb := a.vals[k], b.vals[k]
			if va.missing || vb.missing {
				if va.missing != vb.missing {
					return vb.missing
				}
				continue
			}
			c := compareValues(va, vb)
			if key.Desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		if a.rec.ts != b.rec.ts {
			return a.rec.ts < b.rec.ts
		}
		return a.rec.id < b.rec.id
	})
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	out := make([]T, 0, min(limit, len(es)))
	for i := max(q.Skip, 0); i < len(es) && len(out) < limit; i++ {
		out = append(out, es[i].item)
	}
	return out
}
