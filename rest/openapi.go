package rest

import (
	_ "embed" // the OpenAPI document
	"encoding/json"
	"fmt"
	"sync"

	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"
)

// openapiYAML is the OpenAPI 3.1 document of the REST API, written by
// hand (openapi.yaml). openapi_test.go holds it to the registered routes,
// to the access policy and to real responses; docs/api.md is generated
// from it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// openapiJSON converts the document to JSON once. YAML anchors and merge
// keys are resolved by the decoder; x-anchors, which only holds them, is
// dropped.
var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	delete(doc, "x-anchors")
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return b, nil
})

// OpenAPIJSON returns the OpenAPI document that GET /openapi.json serves.
func OpenAPIJSON() ([]byte, error) { return openapiJSON() }

// routeOpenAPI serves the document without credentials (publicPrefixes).
func (s *Server) routeOpenAPI(r fiber.Router) {
	r.Get("/openapi.json", func(c *fiber.Ctx) error {
		b, err := openapiJSON()
		if err != nil {
			return err // 500/5002, logged
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(b)
	})
}

// RouteAccess is the access rule of one route as the OpenAPI document
// states it (x-mqim-access, and whether a bearer token may call it).
type RouteAccess struct {
	Keys  string // "key", "strict" or "master"
	Token bool   // some token may call it
}

// PolicyAccess returns the access rule of every route of the policy,
// keyed by "METHOD /pattern", for the test that holds the document to it.
func PolicyAccess() map[string]RouteAccess {
	names := map[access]string{anyKey: "key", strict: "strict", master: "master"}
	out := make(map[string]RouteAccess, len(policy))
	for _, r := range policy {
		out[r.method+" "+r.path] = RouteAccess{Keys: names[r.keys], Token: r.token != nil}
	}
	return out
}
