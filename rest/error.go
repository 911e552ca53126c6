package rest

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/mqim/mqim/chat"
)

// codeStatus is the HTTP status of each MaxIM error code (docs/maxim.md
// §3.0). Codes not listed are internal: 500.
var codeStatus = map[int]int{
	chat.CodeInvalid:      fiber.StatusBadRequest,
	chat.CodeDatabase:     fiber.StatusInternalServerError,
	chat.CodeUnauthorized: fiber.StatusUnauthorized,
	chat.CodeNotFound:     fiber.StatusNotFound,
	chat.CodeConflict:     fiber.StatusConflict,
	chat.CodeFileStorage:  fiber.StatusInternalServerError,
	chat.CodeImage:        fiber.StatusInternalServerError,
	chat.CodeMemberLimit:  fiber.StatusBadRequest,
	chat.CodeUnsupported:  fiber.StatusBadRequest,
	chat.CodeTooLong:      fiber.StatusBadRequest,
	chat.CodeFileTooLarge: fiber.StatusRequestEntityTooLarge,
	chat.CodeUpload:       fiber.StatusBadRequest,
	chat.CodeRateLimited:  fiber.StatusTooManyRequests,
	chat.CodeInvalidQuery: fiber.StatusBadRequest,
}

// errorBody is the MaxIM error body; the names come from SDK-JS4
// ParrotError.
type errorBody struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// statusError is a MaxIM error sent with a status other than its code's
// usual one: a strict-admin refusal is 403 with code 5003.
type statusError struct {
	status int
	err    *chat.Error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// writeError writes err as a MaxIM error response and is the Fiber
// ErrorHandler. Handlers (system.go and attachment.go included) can simply
// return a *chat.Error, or any error, and let it land here; call it
// directly only to answer an error without returning it.
//
// The mapping: *chat.Error → its code and the §3.0 status; *fiber.Error
// (unknown route, wrong method, body too large, ...) → its status with the
// closest MaxIM code; anything else is internal: logged, and the client sees
// 500/5002 "internal error".
func (s *Server) writeError(c *fiber.Ctx, err error) error {
	status, body := s.classify(c, err)
	c.Status(status)
	return c.JSON(body)
}

func (s *Server) classify(c *fiber.Ctx, err error) (int, errorBody) {
	var se *statusError
	if errors.As(err, &se) {
		return se.status, errorBody{se.err.Code, se.err.Message}
	}
	var ce *chat.Error
	if errors.As(err, &ce) {
		status, ok := codeStatus[ce.Code]
		if !ok {
			status = fiber.StatusInternalServerError
		}
		return status, errorBody{ce.Code, ce.Message}
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return fe.Code, errorBody{fiberCode(c, fe.Code), fiberMessage(fe)}
	}
	requestLog(c, s.opts.Log).Error().Err(err).Str("method", c.Method()).Str("path", c.Path()).Msg("internal error")
	return fiber.StatusInternalServerError, errorBody{chat.CodeInternal, "internal error"}
}

// fiberCode picks the MaxIM code of an error Fiber (or fasthttp) raised
// before or instead of a handler.
func fiberCode(c *fiber.Ctx, status int) int {
	switch status {
	case fiber.StatusNotFound:
		return chat.CodeNotFound
	case fiber.StatusMethodNotAllowed, fiber.StatusNotImplemented:
		return chat.CodeUnsupported
	case fiber.StatusRequestEntityTooLarge:
		if strings.HasPrefix(c.Path(), "/attachment") {
			return chat.CodeFileTooLarge
		}
		return chat.CodeTooLong
	case fiber.StatusRequestHeaderFieldsTooLarge, fiber.StatusRequestURITooLong:
		return chat.CodeTooLong
	case fiber.StatusTooManyRequests:
		return chat.CodeRateLimited
	case fiber.StatusUnauthorized, fiber.StatusForbidden:
		return chat.CodeUnauthorized
	}
	if status >= 500 {
		return chat.CodeInternal
	}
	return chat.CodeInvalid
}

func fiberMessage(fe *fiber.Error) string {
	switch fe.Code {
	case fiber.StatusNotFound:
		return "no such endpoint"
	case fiber.StatusMethodNotAllowed:
		return "method not allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "request body too large"
	}
	if fe.Code >= 500 {
		return "internal error"
	}
	return strings.ToLower(fe.Message)
}
