package fhir

import (
	"fmt"
	"strings"

	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	cspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/capability_statement_go_proto"
)

// capabilityJSON is the server's CapabilityStatement. It is a document
// (not code) so that it reads as the spec does; Capability parses it
// through the library, which types and validates it like any resource.
// BASE and TOKEN are replaced by this server's URLs.
const capabilityJSON = `{
  "resourceType": "CapabilityStatement",
  "status": "active",
  "date": "2026-12-01",
  "publisher": "OpenVisit",
  "kind": "instance",
  "software": {"name": "OpenVisit"},
  "implementation": {"description": "OpenVisit FHIR R4 API for EHR clients", "url": "BASE"},
  "fhirVersion": "4.0.1",
  "format": ["json"],
  "rest": [{
    "mode": "server",
    "security": {
      "extension": [{
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [{"url": "token", "valueUri": "TOKEN"}]
      }],
      "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
      "description": "SMART Backend Services: OAuth 2.0 client credentials with a signed JWT assertion (RS384 or ES384); system scopes."
    },
    "resource": [
      {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}],
       "searchParam": [{"name": "identifier", "type": "token", "documentation": "system|value, exact"}]},
      {"type": "Appointment", "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "update"}, {"code": "patch"}],
       "searchParam": [{"name": "patient", "type": "reference"}, {"name": "date", "type": "date", "documentation": "ge, gt, le, lt, eq on the start"}]},
      {"type": "Encounter", "interaction": [{"code": "read"}]}
    ]
  }]
}`

// Capability is the CapabilityStatement of a server whose FHIR base is
// base and whose token endpoint is token.
func (c *Codec) Capability(base, token string) (*cspb.CapabilityStatement, error) {
	doc := strings.NewReplacer("BASE", base, "TOKEN", token).Replace(capabilityJSON)
	r, err := c.Decode([]byte(doc))
	if err != nil {
		return nil, err
	}
	cs, ok := r.GetOneofResource().(*bcrpb.ContainedResource_CapabilityStatement)
	if !ok {
		return nil, fmt.Errorf("fhir: capability statement is a %T", r.GetOneofResource())
	}
	return cs.CapabilityStatement, nil
}
