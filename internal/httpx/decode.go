package httpx

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// ErrBadInput marks the errors of DecodeJSON and CheckParams: a request
// refused for what it carries. Handlers audit such refusals where they
// audit the request's success.
var ErrBadInput = errors.New("httpx: bad input")

func badInput(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: ErrBadInput}
}

var (
	errContentType = badInput(KindInvalid, "bad_content_type", "expected Content-Type: application/json")
	errTooLarge    = badInput(KindTooLarge, "body_too_large", "request body is too large")
	errBadJSON     = badInput(KindInvalid, "bad_json", "request body is not valid JSON for this endpoint")
	errUnknown     = badInput(KindInvalid, "unknown_field", "request has a field this endpoint does not accept")
	errBadText     = badInput(KindInvalid, "bad_json", "request body holds a NUL character or text that is not UTF-8")
	errBadParam    = badInput(KindInvalid, "bad_parameter", "a path or query parameter is malformed or holds a NUL character or text that is not UTF-8")
)

// DecodeJSON decodes one JSON object from the request body into v. It is
// strict, with a stable code for each refusal (400 unless too large):
//
//   - bad_content_type: not application/json;
//   - body_too_large (413): over http.max_body_bytes (LimitBody);
//   - bad_json: not one JSON value, trailing data, a duplicate member name,
//     invalid UTF-8, a NUL character in any string (PostgreSQL text cannot
//     hold it), or a value of the wrong type;
//   - unknown_field: a member v does not have, including one that differs
//     from v's only in case (encoding/json would match it silently).
//
// No message names client data. Every JSON route decodes through here.
func DecodeJSON(c *gin.Context, v any) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	return DecodeJSONBytes(body, v)
}

// CheckJSON decodes the body into v as DecodeJSON does, then puts the
// body back for the handler: a check at the edge, before any handler
// decides anything else.
func CheckJSON(c *gin.Context, v any) error {
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	return DecodeJSONBytes(body, v)
}

func readJSON(c *gin.Context) ([]byte, error) {
	if c.ContentType() != "application/json" {
		return nil, errContentType
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errTooLarge
		}
		return nil, errBadJSON
	}
	return body, nil
}

// DecodeJSONBytes is DecodeJSON's decoding of a body already read.
func DecodeJSONBytes(body []byte, v any) error {
	if err := checkJSONText(body); err != nil {
		return err
	}
	// encoding/json/v2 semantics: member names match exactly, duplicates
	// and invalid UTF-8 are errors, and so (with this option) are unknown
	// members.
	err := json.Unmarshal(body, v, json.RejectUnknownMembers(true))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, json.ErrUnknownName):
		return errUnknown
	default:
		return errBadJSON
	}
}

// checkJSONText walks every token of body: it must be one well-formed JSON
// value (jsontext refuses duplicate names and invalid UTF-8 by default)
// whose strings, member names included, hold no NUL.
func checkJSONText(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	values := 0
	for {
		tok, err := dec.ReadToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errBadJSON
		}
		if dec.StackDepth() == 0 {
			values++
		}
		if tok.Kind() == '"' && strings.IndexByte(tok.String(), 0) >= 0 {
			return errBadText
		}
	}
	if values != 1 {
		return errBadJSON
	}
	return nil
}

// CheckParams refuses a request whose path parameters or query string
// could not be stored or compared as text: malformed escapes, invalid
// UTF-8, or NUL (bad_parameter, 400). Signaling runs it on every route
// before the handler, so no parameter reaches SQL unchecked.
func CheckParams(c *gin.Context) error {
	for _, p := range c.Params {
		if !cleanParam(p.Value) {
			return errBadParam
		}
	}
	if c.Request.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		return errBadParam
	}
	for k, vs := range q {
		if !cleanParam(k) {
			return errBadParam
		}
		for _, v := range vs {
			if !cleanParam(v) {
				return errBadParam
			}
		}
	}
	return nil
}

func cleanParam(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
