// Package fhir is the clinic's EHR-facing view of OpenVisit as FHIR R4:
// patients as Patient, scheduled visits as Appointment, what happened in a
// visit as Encounter, refusals as OperationOutcome. Resources are the
// typed protocol buffers of github.com/google/fhir/go and go in and out
// through its JSON format, whose unmarshaller validates what it reads
// (structure, primitives, required codes, required fields, reference
// types); every resource written is validated (fhirvalidate) before it
// leaves. docs/fhir.md says what that does not check.
//
// The operations (service.go) are the scheduling and invite domains
// applied for a machine client: a created Appointment is a visit booked
// through internal/visits, with the patient's invite issued as the
// provider page issues it.
package fhir

import (
	"errors"
	"fmt"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/fhir/go/jsonformat/fhirvalidate"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
)

// MaxBody bounds a FHIR request body (bytes).
const MaxBody = 64 << 10

// maxDepth bounds the nesting of a resource read (the library's guard
// against deeply nested input).
const maxDepth = 32

// Codec reads and writes FHIR R4 JSON through the library. It is safe for
// concurrent use once built.
type Codec struct {
	in  *jsonformat.Unmarshaller
	out *jsonformat.Marshaller
}

// NewCodec builds a Codec; times without a zone are read as UTC.
func NewCodec() (*Codec, error) {
	in, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("fhir: unmarshaller: %w", err)
	}
	in.MaxNestingDepth = maxDepth
	out, err := jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("fhir: marshaller: %w", err)
	}
	return &Codec{in: in, out: out}, nil
}

// ErrInvalid wraps what the library found wrong with a resource read; its
// text names FHIR paths and rules, never values.
var ErrInvalid = errors.New("fhir: invalid resource")

// Decode reads one resource from JSON, validated by the library.
func (c *Codec) Decode(body []byte) (*bcrpb.ContainedResource, error) {
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: too large", ErrInvalid)
	}
	m, err := c.in.Unmarshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, describe(err))
	}
	cr, ok := m.(*bcrpb.ContainedResource)
	if !ok {
		return nil, fmt.Errorf("%w: not a resource", ErrInvalid)
	}
	return cr, nil
}

// describe is the library's error text: the FHIR path and the rule
// broken. Its errors keep the input's value in a separate Diagnostics
// field, which Error() leaves out (it may be PHI), so the text is safe to
// answer; it is cut to a bounded length.
func describe(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

// Encode validates resource r (a resource message, not a
// ContainedResource) and writes it as JSON.
func (c *Codec) Encode(r proto.Message) ([]byte, error) {
	if err := fhirvalidate.Validate(r); err != nil {
		return nil, fmt.Errorf("fhir: emitting an invalid resource: %w", err)
	}
	return c.out.MarshalResource(r)
}

// EncodeContained writes the resource a ContainedResource holds (what
// Decode returns), validated like Encode.
func (c *Codec) EncodeContained(cr *bcrpb.ContainedResource) ([]byte, error) {
	m := cr.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("oneof_resource"))
	if fd == nil {
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	}
	return c.Encode(m.Get(fd).Message().Interface())
}
