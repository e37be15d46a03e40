package smart

// Configuration is the SMART discovery document served at the FHIR base's
// /.well-known/smart-configuration (SMART App Launch 2.x §"Using
// .well-known", and Backend Services): what an EHR needs to find the token
// endpoint and what it takes, without reading our docs. Only the
// client-credentials grant exists here, so no authorization endpoint or
// PKCE methods are listed (listing them would promise flows we refuse).
type Configuration struct {
	TokenEndpoint            string   `json:"token_endpoint"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigning []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	Scopes                   []string `json:"scopes_supported"`
	Capabilities             []string `json:"capabilities"`
}

// Discovery returns the configuration for a server whose token endpoint is
// tokenURL, from the same lists the token endpoint checks against.
func Discovery(tokenURL string) Configuration {
	algs := make([]string, len(algorithms))
	for i, a := range algorithms {
		algs[i] = string(a)
	}
	return Configuration{
		TokenEndpoint:            tokenURL,
		TokenEndpointAuthMethods: []string{"private_key_jwt"},
		TokenEndpointAuthSigning: algs,
		GrantTypes:               []string{GrantClientCredentials},
		Scopes:                   KnownScopes(),
		Capabilities:             []string{"client-confidential-asymmetric"},
	}
}
