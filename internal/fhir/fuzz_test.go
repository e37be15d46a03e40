package fhir_test

import (
	"testing"
)

// FuzzDecode: the FHIR JSON parsing path (the library's validating
// unmarshaller behind Codec.Decode) never panics, and whatever it accepts
// writes back out as a valid resource.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Appointment","status":"booked","start":"2026-12-08T15:00:00Z","end":"2026-12-08T15:30:00Z",
		"participant":[{"actor":{"reference":"Patient/5b0c2a4e-8f0e-4d59-9a39-2f1c7b7d1e01"},"status":"accepted"}]}`))
	f.Add([]byte(`{"resourceType":"Patient","id":"x","identifier":[{"system":"urn:oid:1.2","value":"A"}]}`))
	f.Add([]byte(`{"resourceType":"Encounter","status":"planned","class":{"code":"VR"}}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient"}}]}`))
	f.Add([]byte(`[]`))
	c := codec(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := c.Decode(body)
		if err != nil {
			return
		}
		if _, err := c.EncodeContained(r); err != nil {
			t.Fatalf("an accepted resource does not write back: %v", err)
		}
	})
}
