package chat

import (
	"errors"
	"fmt"
)

// MaxIM error codes (docs/maxim.md §3.0). The code travels to REST clients in
// the error body and to MQTT clients in the error event.
const (
	CodeInvalid         = 5001 // invalid parameter
	CodeDatabase        = 5002 // database error
	CodeUnauthorized    = 5003 // bad app, key or sign; failed login; not allowed
	CodeNotFound        = 5004 // requested object does not exist
	CodeConflict        = 5005 // conflicting parameters
	CodeFileStorage     = 5006 // file storage error
	CodeImage           = 5007 // image processing failed
	CodeMemberLimit     = 5008 // member limit reached
	CodeUnsupported     = 5009 // unsupported operation
	CodeTooLong         = 5010 // parameter too long
	CodeFileTooLarge    = 5011 // file too large
	CodeUpload          = 5012 // file upload error
	CodeInvalidQuery    = 5018 // invalid query
	CodeRateLimited     = 5013 // mqim extension: message rate limit exceeded
	CodeInternal        = CodeDatabase
	codeUnknownFallback = CodeDatabase
)

// Error is the one error type of the domain. Code is a MaxIM error code;
// Message is safe to show to the client.
type Error struct {
	Code    int
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return fmt.Sprintf("chat error %d: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the MaxIM code of err: the code of an *Error anywhere in
// its chain, 0 for nil, and CodeDatabase (internal) for any other error.
func ErrorCode(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codeUnknownFallback
}

// ErrorMessage returns the client-safe message of err. Errors that are not an
// *Error are internal: their text stays in the logs, the client sees
// "internal error".
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsNotFound reports whether err carries CodeNotFound.
func IsNotFound(err error) bool { return ErrorCode(err) == CodeNotFound }
