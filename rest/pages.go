package rest

import (
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

// routePages serves the static pages of Options.Pages (the admin console,
// the browser demo), without credentials: a page is public, the REST calls
// it makes carry their own (see publicPrefixes).
func (s *Server) routePages(r fiber.Router) {
	for prefix, files := range s.opts.Pages {
		// /admin answers with a redirect to /admin/, so that the page's
		// relative links resolve under the prefix.
		r.Use(prefix, func(c *fiber.Ctx) error {
			if c.Path() == prefix {
				return c.Redirect(prefix+"/", fiber.StatusMovedPermanently)
			}
			return c.Next()
		})
		r.Use(prefix, filesystem.New(filesystem.Config{
			Root:   http.FS(files),
			Index:  "index.html",
			MaxAge: 60,
		}))
	}
}

// pageFS is the type of the values of Options.Pages.
type pageFS = fs.FS
