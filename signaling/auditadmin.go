package signaling

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/incidents"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/store"
)

// EntryView is an audit entry as the admin pages and exports show it, with
// its place in the hash chain.
type EntryView struct {
	Seq          int64     `json:"seq"`
	At           time.Time `json:"at"`
	ActorID      string    `json:"actor_id"`
	ActorRole    string    `json:"actor_role"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	PatientID    string    `json:"patient_id"`
	VisitID      string    `json:"visit_id"`
	IP           string    `json:"ip"`
	UserAgent    string    `json:"user_agent"`
	Outcome      string    `json:"outcome"`
	Reason       string    `json:"reason"`
	PrevHash     string    `json:"prev_hash"`
	Hash         string    `json:"hash"`
}

func viewEntry(e *audit.Entry) EntryView {
	return EntryView{Seq: e.Seq, At: e.At.UTC(), ActorID: e.ActorID, ActorRole: e.ActorRole, Action: e.Action,
		ResourceType: e.ResourceType, ResourceID: e.ResourceID, PatientID: e.PatientID, VisitID: e.VisitID,
		IP: e.IP, UserAgent: e.UserAgent, Outcome: string(e.Outcome), Reason: e.Reason,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// auditFilter reads the search filters from the query string.
func auditFilter(c *gin.Context) (audit.Filter, *httpx.Error) {
	f := audit.Filter{ActorID: c.Query("actor"), PatientID: c.Query("patient"), VisitID: c.Query("visit"),
		Action: c.Query("action"), Outcome: audit.Outcome(c.Query("outcome"))}
	for _, v := range []string{f.ActorID, f.PatientID, f.VisitID, f.Action} {
		if len(v) > 128 {
			return f, httpx.E(httpx.KindInvalid, "bad_filter", "A filter is too long.")
		}
	}
	switch f.Outcome {
	case "", audit.Success, audit.Failure, audit.Denied:
	default:
		return f, httpx.E(httpx.KindInvalid, "bad_filter", "outcome is success, failure or denied.")
	}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, httpx.E(httpx.KindInvalid, "bad_filter", name+" must be an RFC 3339 time.")
			}
			*dst = t
		}
	}
	if v := c.Query("before_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return f, httpx.E(httpx.KindInvalid, "bad_filter", "before_seq must be a sequence number.")
		}
		f.BeforeSeq = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, httpx.E(httpx.KindInvalid, "bad_filter", "limit is 1 to 1000.")
		}
		f.Limit = n
	}
	return f, nil
}

// adminAudit records an admin's use of the audit trail itself, before the
// data leaves.
func (s *Server) adminAudit(c *gin.Context, action, patient, detail string) error {
	p := principal(c)
	return s.p.DB.Audit().Append(c.Request.Context(), audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: action,
		ResourceType: "audit", PatientID: patient, Outcome: audit.Success, Reason: detail, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)})
}

func (s *Server) searchAudit(c *gin.Context) {
	f, e := auditFilter(c)
	if e != nil {
		s.abort(c, e)
		return
	}
	if err := s.adminAudit(c, actionAuditSearch, f.PatientID, filterSummary(f)); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	entries, err := audit.Search(c.Request.Context(), s.p.DB.Pool(), f)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]EntryView, len(entries))
	for i := range entries {
		out[i] = viewEntry(&entries[i])
	}
	c.JSON(http.StatusOK, gin.H{"entries": out, "has_more": len(out) == limitOf(f)})
}

func limitOf(f audit.Filter) int {
	if f.Limit <= 0 || f.Limit > 1000 {
		return 100
	}
	return f.Limit
}

// filterSummary records what a search or export selected (IDs and times
// only: no PHI) in its own audit entry.
func filterSummary(f audit.Filter) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("actor", f.ActorID)
	add("patient", f.PatientID)
	add("visit", f.VisitID)
	add("action", f.Action)
	add("outcome", string(f.Outcome))
	if !f.From.IsZero() {
		add("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		add("to", f.To.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, " ")
}

// CheckpointView is the chain proof attached to exports: the newest signed
// chain head, checkable with the checkpoint public key.
type CheckpointView struct {
	Seq       int64     `json:"seq"`
	HeadHash  string    `json:"head_hash"`
	SignedAt  time.Time `json:"signed_at"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"`
}

// exportAudit streams matching entries in chain order as CSV or JSON, each
// with its prev_hash and hash (recomputable from the canonical encoding in
// internal/audit/chain.go), plus the newest signed checkpoint.
func (s *Server) exportAudit(c *gin.Context) {
	ctx := c.Request.Context()
	f, e := auditFilter(c)
	if e != nil {
		s.abort(c, e)
		return
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_format", "format is csv or json."))
		return
	}
	if err := s.adminAudit(c, actionAuditExport, f.PatientID, format+" "+filterSummary(f)); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	cp, haveCP, err := audit.LatestCheckpoint(ctx, s.p.DB.Pool())
	if err != nil {
		s.abort(c, err)
		return
	}
	var cpv *CheckpointView
	if haveCP {
		cpv = &CheckpointView{Seq: cp.Seq, HeadHash: hex.EncodeToString(cp.HeadHash), SignedAt: cp.SignedAt,
			KeyID: cp.KeyID, Signature: hex.EncodeToString(cp.Signature)}
	}
	name := "openvisit-audit-" + s.p.Now().UTC().Format("20060102T150405Z") + "." + format
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	if format == "csv" {
		if cpv != nil {
			c.Header("X-OpenVisit-Checkpoint", fmt.Sprintf("seq=%d; head=%s; signed_at=%s; key=%s; signature=%s",
				cpv.Seq, cpv.HeadHash, cpv.SignedAt.UTC().Format(time.RFC3339Nano), cpv.KeyID, cpv.Signature))
		}
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Status(http.StatusOK)
		w := csv.NewWriter(c.Writer)
		_ = w.Write([]string{"seq", "at", "actor_id", "actor_role", "action", "resource_type", "resource_id", "patient_id",
			"visit_id", "ip", "user_agent", "outcome", "reason", "prev_hash", "hash"})
		err = audit.Each(ctx, s.p.DB.Pool(), f, func(e *audit.Entry) error {
			v := viewEntry(e)
			return w.Write([]string{strconv.FormatInt(v.Seq, 10), v.At.Format(time.RFC3339Nano), v.ActorID, v.ActorRole, v.Action,
				v.ResourceType, v.ResourceID, v.PatientID, v.VisitID, v.IP, csvSafe(v.UserAgent), v.Outcome, csvSafe(v.Reason), v.PrevHash, v.Hash})
		})
		if cpv != nil && err == nil {
			// The proof travels in the file too (a download keeps no
			// headers): a last row marked #checkpoint, padded to the width.
			row := []string{"#checkpoint", strconv.FormatInt(cpv.Seq, 10), cpv.SignedAt.UTC().Format(time.RFC3339Nano),
				"key_id=" + cpv.KeyID, "signature=" + cpv.Signature, "", "", "", "", "", "", "", "", "", cpv.HeadHash}
			err = w.Write(row)
		}
		w.Flush()
	} else {
		c.Header("Content-Type", "application/json")
		c.Status(http.StatusOK)
		enc := json.NewEncoder(c.Writer)
		_, _ = c.Writer.WriteString(`{"format":"openvisit.audit.v1","entries":[`)
		first := true
		err = audit.Each(ctx, s.p.DB.Pool(), f, func(e *audit.Entry) error {
			if !first {
				if _, err := c.Writer.WriteString(","); err != nil {
					return err
				}
			}
			first = false
			return enc.Encode(viewEntry(e))
		})
		tail, _ := json.Marshal(cpv)
		_, _ = c.Writer.WriteString(`],"checkpoint":` + string(tail) + "}\n")
	}
	if err != nil {
		// Headers are out: the truncated body is the only signal left.
		s.log.Error("audit export interrupted", "err", err)
	}
}

// csvSafe defuses spreadsheet formula injection in free-text columns.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// patientAccessReport answers "who accessed this patient's data and
// when": every entry naming the patient or one of their visits.
func (s *Server) patientAccessReport(c *gin.Context) {
	ctx := c.Request.Context()
	patient := c.Param("patient_id")
	if _, err := store.PatientByID(ctx, s.p.DB, patient); err != nil {
		s.abort(c, err)
		return
	}
	f, e := auditFilter(c)
	if e != nil {
		s.abort(c, e)
		return
	}
	f.PatientID, f.PatientVisits = patient, true
	if f.Limit == 0 {
		f.Limit = 1000
	}
	if err := s.adminAudit(c, actionAuditPatientReport, patient, ""); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	entries, err := audit.Search(ctx, s.p.DB.Pool(), f)
	if err != nil {
		s.abort(c, err)
		return
	}
	out := make([]EntryView, len(entries))
	actors := map[string]string{}
	for i := range entries {
		out[i] = viewEntry(&entries[i])
		if id := entries[i].ActorID; ids.Valid(id) && actors[id] == "" {
			if u, err := store.UserByID(ctx, s.p.DB, ids.UserID(id), false); err == nil {
				actors[id] = u.Email
			}
		}
	}
	c.JSON(http.StatusOK, gin.H{"patient_id": patient, "entries": out, "actors": actors, "has_more": len(out) == limitOf(f)})
}

type incidentRequest struct {
	Title        string `json:"title"`
	Description  string `json:"description"`
	DiscoveredAt string `json:"discovered_at"`
}

func (s *Server) createIncident(c *gin.Context) {
	var req incidentRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	discovered, _ := time.Parse(time.RFC3339, req.DiscoveredAt) // zero when not a time: refused below
	inc, err := s.incidentService().Create(c.Request.Context(), incidents.Report{Title: req.Title, Description: req.Description,
		DiscoveredAt: discovered, By: principal(c).UserID, Event: s.adminEvent(c, "", "")})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, inc)
}

func (s *Server) listIncidents(c *gin.Context) {
	list, err := s.incidentService().List(c.Request.Context())
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"incidents": list, "now": s.p.Now()})
}

// incidentService is the incidents domain on this server's database.
func (s *Server) incidentService() *incidents.Service {
	return incidents.New(s.env())
}

// scopeQuery reads actor_id or kek_id and the time range; a time that does
// not parse is zero (incidents.Service.Scope refuses the range).
func scopeQuery(c *gin.Context) store.ScopeQuery {
	q := store.ScopeQuery{ActorID: c.Query("actor_id"), KEKID: c.Query("kek_id")}
	from, err1 := time.Parse(time.RFC3339, c.Query("from"))
	to, err2 := time.Parse(time.RFC3339, c.Query("to"))
	if err1 == nil && err2 == nil {
		q.From, q.To = from, to
	}
	return q
}

// incidentScope lists the patients and recordings a breach may have
// touched, with counts by state and the notices they call for. It shows
// patient data (names and contact details): the query and one entry per
// patient in the answer are audited together before it leaves (patients.RecordShown).
func (s *Server) incidentScope(c *gin.Context) {
	ctx := c.Request.Context()
	q := scopeQuery(c)
	inc, sc, err := s.incidentService().Scope(ctx, c.Param("incident_id"), q)
	if err != nil {
		s.abort(c, err)
		return
	}
	what := "scope"
	if c.Query("format") == "csv" {
		what = "notification list export"
	}
	query := s.adminEvent(c, actionIncidentScope, inc.ID)
	query.ResourceType = "incident"
	query.Reason = what + " incident " + inc.ID + " actor=" + q.ActorID + " kek=" + q.KEKID +
		" from=" + q.From.UTC().Format(time.RFC3339) + " to=" + q.To.UTC().Format(time.RFC3339)
	shown := s.adminEvent(c, actionPatientView, "")
	shown.ResourceType, shown.Reason = "patient", what+" incident "+inc.ID
	inScope := make([]string, len(sc.Patients))
	for i, p := range sc.Patients {
		inScope[i] = p.ID
	}
	if err := s.p.DB.Audit().AppendAll(ctx, append([]audit.Event{query}, patients.ShownEvents(shown, inScope)...)); err != nil {
		s.abort(c, errAuditDown(err))
		return
	}
	if c.Query("format") == "csv" {
		// The notification list: whom to notify and how to reach them.
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Header("Content-Disposition", `attachment; filename="notification-list-`+inc.ID+`.csv"`)
		c.Status(http.StatusOK)
		w := csv.NewWriter(c.Writer)
		_ = w.Write([]string{"patient_id", "name", "date_of_birth", "email", "phone", "state"})
		for _, p := range sc.Patients {
			_ = w.Write([]string{p.ID, csvSafe(p.Name), p.DateOfBirth, csvSafe(p.Email), csvSafe(p.Phone), p.State})
		}
		w.Flush()
		return
	}
	c.JSON(http.StatusOK, gin.H{"incident": inc, "scope": sc})
}

type incidentStatusRequest struct {
	Status string `json:"status"`
}

// setIncidentStatus moves an incident to notified or closed (or reopens it).
func (s *Server) setIncidentStatus(c *gin.Context) {
	var req incidentStatusRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if err := s.incidentService().SetStatus(c.Request.Context(), c.Param("incident_id"), req.Status, s.adminEvent(c, "", "")); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": req.Status})
}
