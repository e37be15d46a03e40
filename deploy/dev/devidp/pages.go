package main

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
)

// login is the IdP's sign-in and consent page: one form, because the one
// client is the clinic's own application.
type login struct {
	st       *storage
	callback func(context.Context, string) string
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clinic sign-in (dev IdP)</title></head>
<body>
<h1>Clinic account (development identity provider)</h1>
<p>OpenVisit asks to know who you are (your name, email and groups) and to stay signed in to check
that your account is still active (offline access).</p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<p><label for="username">Username</label> <input id="username" name="username" autocomplete="username" required></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button id="submit" type="submit">Sign in and allow</button></p>
</form>
</body></html>`))

func (l *login) page(w http.ResponseWriter, r *http.Request) {
	l.render(w, r.URL.Query().Get("id"), "")
}

func (l *login) render(w http.ResponseWriter, id, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No form-action: browsers apply it to the redirects after the post
	// too, and the login ends in a redirect to the client.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	if msg != "" {
		w.WriteHeader(http.StatusUnauthorized)
	}
	_ = loginPage.Execute(w, struct{ ID, Error string }{id, msg})
}

func (l *login) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.PostFormValue("id")
	if err := l.st.checkLogin(id, r.PostFormValue("username"), r.PostFormValue("password")); err != nil {
		l.render(w, id, "Wrong username or password, or the account is disabled.")
		return
	}
	http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
}

func (a *admin) putUser(w http.ResponseWriter, r *http.Request) {
	var u user
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil || u.Username == "" || u.Password == "" {
		http.Error(w, "want a JSON user with username and password", http.StatusBadRequest)
		return
	}
	sub := a.st.putUser(u)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"sub": sub})
}

func (a *admin) disable(off bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.st.setDisabled(r.PathValue("username"), off); err != nil {
			http.Error(w, "no such user", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *admin) rotate(w http.ResponseWriter, _ *http.Request) {
	if err := a.st.rotate(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
