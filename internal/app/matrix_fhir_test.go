package app_test

// fhirMatrix: no browser session opens FHIR — cookies are not read there,
// so every principal of the matrix is anonymous to it: 401 on the
// interactions, the CapabilityStatement open to all, and the token
// endpoint refusing a body that is not its form (400). The clients' own
// refusals are TestFHIRRefusesOutsiders and TestClientCredentialsRejected.
func fhirMatrix() map[string]matrixCase {
	body := func(*fixture) any { return map[string]any{"resourceType": "Appointment", "status": "booked"} }
	return map[string]matrixCase{
		"POST /oauth/token":                            {want: all(400), body: body},
		"GET /fhir/R4/metadata":                        {want: all(200)},
		"GET /fhir/R4/.well-known/smart-configuration": {want: all(200)},
		"GET /fhir/R4/Patient/:patient_id":             {want: all(401)},
		"GET /fhir/R4/Patient":                         {want: all(401)},
		"POST /fhir/R4/Appointment":                    {want: all(401), body: body},
		"GET /fhir/R4/Appointment/:visit_id":           {want: all(401)},
		"GET /fhir/R4/Appointment":                     {want: all(401)},
		"PUT /fhir/R4/Appointment/:visit_id":           {want: all(401), body: body},
		"PATCH /fhir/R4/Appointment/:visit_id":         {want: all(401), body: body},
		"GET /fhir/R4/Encounter/:visit_id":             {want: all(401)},
	}
}
