// Package scim is the SCIM 2.0 service provider an identity provider
// (Entra ID, Okta, Google, Keycloak) provisions staff accounts through:
// /scim/v2/Users — create, get, list with a filter (userName eq "…"),
// replace, patch (active=false deactivates) and delete (which deactivates:
// the account and its audit trail stay). The protocol — schema
// validation, filters, PATCH operations, list responses and the error
// format — is github.com/elimity-com/scim's; this package maps its
// resource callbacks onto the staff accounts domain (internal/accounts),
// so a deactivation is the same disable an admin makes: the user's
// sessions end and internal/revocation closes their calls on every media
// node within 2 s.
//
// Each identity provider calls with its own bearer token (token.go), a
// machine client of kind "scim"; every change is audited with that client
// as the actor (role "idp").
package scim

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// ActorRole is the audit role of an identity provider's SCIM client.
const ActorRole = "idp"

// MaxBody bounds a SCIM request body; a user resource is far smaller.
const MaxBody = 64 << 10

type callerKey struct{}

// Caller is an authenticated SCIM client and where its request came from
// (for the audit entries).
type Caller struct {
	Client        store.MachineClient
	IP, UserAgent string
}

// WithCaller returns ctx carrying the request's caller (the HTTP edge sets
// it after checking the bearer token).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Params configure the SCIM server.
type Params struct {
	store.Env
	// BaseURL is the public URL of /scim/v2, for resources' locations.
	BaseURL string
	Logger  *slog.Logger
}

// New returns the SCIM server. It serves paths below /v2 (mount it with
// the /scim prefix stripped); callers authenticate the client first
// (WithCaller): a request without one is refused.
func New(p Params) (http.Handler, error) {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	users := &users{p: p, accounts: accounts.New(p.Env), log: p.Logger.With("component", "scim")}
	return scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			DocumentationURI: optional.NewString("https://github.com/openvisit/openvisit/blob/main/README.md#scim"),
			AuthenticationSchemes: []scim.AuthenticationScheme{{Type: scim.AuthenticationTypeOauthBearerToken,
				Name: "Bearer token", Description: "A token per identity provider: openvisit scim token create --idp NAME", Primary: true}},
			MaxResults: 100, SupportFiltering: true, SupportPatch: true,
		},
		ResourceTypes: []scim.ResourceType{{
			ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
			Description: optional.NewString("Staff account"), Schema: schema.CoreUserSchema(), Handler: users,
		}},
	}, scim.WithBaseURL(p.BaseURL))
}

// users implements scim.ResourceHandler on the staff accounts.
type users struct {
	p        Params
	accounts *accounts.Service
	log      *slog.Logger
}

// event is the audit entry's actor and source for r.
func (h *users) event(r *http.Request) (audit.Event, error) {
	c, ok := callerFrom(r.Context())
	if !ok {
		return audit.Event{}, scimerrors.ScimError{Status: http.StatusUnauthorized, Detail: "A bearer token is required."}
	}
	return audit.Event{ActorID: c.Client.ID, ActorRole: ActorRole, Reason: "scim " + c.Client.Name,
		IP: c.IP, UserAgent: c.UserAgent}, nil
}

func (h *users) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	ev, err := h.event(r)
	if err != nil {
		return scim.Resource{}, err
	}
	s := fromAttributes(attrs, state{active: true})
	u, err := h.accounts.Provision(r.Context(), s.profile(), ev)
	if err != nil {
		return scim.Resource{}, h.scimError(err)
	}
	if !s.active {
		if err := h.setActive(r, u, false); err != nil {
			return scim.Resource{}, h.scimError(err)
		}
		u, _ = store.UserByID(r.Context(), h.p.DB, u.ID, false)
	}
	return resource(u), nil
}

func (h *users) Get(r *http.Request, id string) (scim.Resource, error) {
	if _, err := h.event(r); err != nil {
		return scim.Resource{}, err
	}
	u, err := store.UserByID(r.Context(), h.p.DB, ids.UserID(id), false)
	if err != nil {
		return scim.Resource{}, h.scimError(notFound(err, id))
	}
	return resource(u), nil
}

// GetAll lists the accounts that pass the filter (the library parses and
// evaluates it; identity providers send `userName eq "…"`), a page at a
// time. A clinic has at most thousands of staff: filtering in memory is
// cheap and keeps every filter the library understands.
func (h *users) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	if _, err := h.event(r); err != nil {
		return scim.Page{}, err
	}
	all, err := store.ListUsers(r.Context(), h.p.DB)
	if err != nil {
		return scim.Page{}, h.scimError(err)
	}
	var matched []scim.Resource
	for _, u := range all {
		res := resource(u)
		if params.FilterValidator != nil {
			attrs := res.Attributes
			attrs["id"] = res.ID
			if params.FilterValidator.PassesFilter(attrs) != nil {
				continue
			}
		}
		matched = append(matched, res)
	}
	page := scim.Page{TotalResults: len(matched), Resources: []scim.Resource{}}
	start := max(params.StartIndex, 1) - 1
	if start < len(matched) {
		page.Resources = matched[start:min(len(matched), start+max(params.Count, 0))]
	}
	return page, nil
}

func (h *users) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	return h.update(r, id, func(cur state) state { return fromAttributes(attrs, state{active: true}) })
}

func (h *users) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	var bad error
	res, err := h.update(r, id, func(cur state) state {
		next, err := applyOps(cur, ops)
		bad = err
		return next
	})
	if bad != nil {
		return scim.Resource{}, bad
	}
	return res, err
}

// Delete deactivates: the account, its history and its audit trail stay.
func (h *users) Delete(r *http.Request, id string) error {
	_, err := h.update(r, id, func(cur state) state { cur.active = false; return cur })
	return err
}

// update applies change to the account's current state and makes what
// differs: the profile (address, name, external id), then activation.
func (h *users) update(r *http.Request, id string, change func(state) state) (scim.Resource, error) {
	ev, err := h.event(r)
	if err != nil {
		return scim.Resource{}, err
	}
	ctx := r.Context()
	u, err := store.UserByID(ctx, h.p.DB, ids.UserID(id), false)
	if err != nil {
		return scim.Resource{}, h.scimError(notFound(err, id))
	}
	cur := stateOf(u)
	next := change(cur)
	if next.profile() != cur.profile() {
		c := accounts.Change{Target: u.ID, Event: ev}
		if err := h.accounts.UpdateProfile(ctx, c, next.profile()); err != nil {
			return scim.Resource{}, h.scimError(err)
		}
	}
	if next.active != cur.active {
		if err := h.setActive(r, u, next.active); err != nil {
			return scim.Resource{}, h.scimError(err)
		}
	}
	if u, err = store.UserByID(ctx, h.p.DB, u.ID, false); err != nil {
		return scim.Resource{}, h.scimError(notFound(err, id))
	}
	return resource(u), nil
}

// setActive disables or enables u through the accounts domain: the same
// path as an admin's, so a disable ends every session and call at once.
func (h *users) setActive(r *http.Request, u store.User, active bool) error {
	ev, err := h.event(r)
	if err != nil {
		return err
	}
	c := accounts.Change{Target: u.ID, Event: ev}
	if active {
		return h.accounts.Enable(r.Context(), c)
	}
	return h.accounts.Disable(r.Context(), c)
}

func notFound(err error, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	return err
}

// scimError maps the accounts domain's refusals to SCIM errors. Anything
// else is a 500 whose detail says nothing (the library would show the
// error's text): the error goes to the log.
func (h *users) scimError(err error) error {
	var se scimerrors.ScimError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, accounts.ErrEmailTaken):
		return scimerrors.ScimErrorUniqueness
	case errors.Is(err, accounts.ErrBadEmail):
		return scimerrors.ScimError{ScimType: scimerrors.ScimTypeInvalidValue, Status: http.StatusBadRequest,
			Detail: "userName must be an email address."}
	case errors.Is(err, accounts.ErrBadName):
		return scimerrors.ScimError{ScimType: scimerrors.ScimTypeInvalidValue, Status: http.StatusBadRequest,
			Detail: "A name or externalId is too long."}
	case errors.Is(err, store.ErrNotFound):
		return scimerrors.ScimError{Status: http.StatusNotFound, Detail: "No such user."}
	}
	h.log.Error("scim request failed", "err", err)
	return scimerrors.ScimError{Status: http.StatusInternalServerError, Detail: "internal error"}
}

// BaseURL is the SCIM base URL under publicURL.
func BaseURL(publicURL string) string { return strings.TrimSuffix(publicURL, "/") + "/scim/v2" }
