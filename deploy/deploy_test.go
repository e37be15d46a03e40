// Package deploy holds no code: its test checks the deployment files. The
// Kubernetes manifests are decoded strictly into the typed k8s.io/api
// objects (an unknown or misspelt field fails, as `kubectl apply
// --validate=strict` would) and checked for what this project requires of
// them; the Dockerfile and the Compose file are checked for their key
// properties (docker cannot run on the development machines).
package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/openvisit/openvisit/internal/config"
)

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// splitDocs splits a multi-document YAML file.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			docs = append(docs, slices.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(sc.Bytes())
		cur.WriteByte('\n')
	}
	docs = append(docs, cur.Bytes())
	var out [][]byte
	for _, d := range docs {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out.WriteString(l + "\n")
		}
	}
	return out.Bytes()
}

// decode strictly decodes every manifest in deploy/k8s.
func decode(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under deploy/k8s: %v", err)
	}
	var objs []object
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			into := typedObject(tm)
			if into == nil {
				t.Fatalf("%s doc %d: unexpected %s %s (add it to typedObject)", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Errorf("%s doc %d (%s): %v", f, i, tm.Kind, err)
				continue
			}
			meta := into.(metav1.Object)
			if meta.GetName() == "" {
				t.Errorf("%s doc %d (%s): no name", f, i, tm.Kind)
			}
			if tm.Kind != "Namespace" && meta.GetNamespace() != "openvisit" {
				t.Errorf("%s %s: namespace %q, want openvisit", tm.Kind, meta.GetName(), meta.GetNamespace())
			}
			objs = append(objs, object{file: filepath.Base(f), kind: tm.Kind, name: meta.GetName(), obj: into})
		}
	}
	return objs
}

// typedObject returns a new object of the k8s.io/api type for tm, or nil
// for a kind this project does not use.
func typedObject(tm metav1.TypeMeta) any {
	switch tm.APIVersion + "/" + tm.Kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	}
	return nil
}

// pinned reports whether an image reference names a fixed version: a
// digest, or a tag that is not "latest" and not a bare major version.
var pinnedTag = regexp.MustCompile(`:(v?\d+\.\d+(\.\d+)?([-.][\w.-]+)?|RELEASE\.[\w.-]+)(@sha256:[0-9a-f]{64})?$`)

func pinned(image string) bool {
	return strings.Contains(image, "@sha256:") || pinnedTag.MatchString(image)
}

func TestDeployManifestsValid(t *testing.T) {
	objs := decode(t)
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.kind] = append(byKind[o.kind], o)
	}
	checkKustomization(t)

	// Every OPENVISIT_* variable set anywhere is one the config knows.
	known := config.EnvNames()
	for _, o := range byKind["ConfigMap"] {
		for k := range o.obj.(*corev1.ConfigMap).Data {
			checkEnv(t, known, "ConfigMap "+o.name, k)
		}
	}
	for _, o := range byKind["Secret"] {
		for k := range o.obj.(*corev1.Secret).StringData {
			checkEnv(t, known, "Secret "+o.name, k)
		}
	}

	// Workloads: one per role, each safe and observable.
	roles := map[string]bool{}
	pdbSelectors := pdbSelectors(t, byKind)
	for _, w := range workloads(byKind) {
		checkWorkload(t, w, pdbSelectors, known, roles)
	}
	for _, r := range []string{"api", "media", "recorder"} {
		if !roles[r] {
			t.Errorf("no workload runs the %s role", r)
		}
	}
	if len(byKind["Ingress"]) == 0 {
		t.Error("no Ingress for the api")
	}
	for _, o := range byKind["StatefulSet"] {
		if o.obj.(*appsv1.StatefulSet).Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
			t.Errorf("StatefulSet %s: set terminationGracePeriodSeconds above the drain timeout", o.name)
		}
	}
}

// checkKustomization checks that the kustomization lists every manifest
// but the secrets example, and only files that exist.
func checkKustomization(t *testing.T) {
	t.Helper()
	kb, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kust struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Namespace  string   `json:"namespace"`
		Resources  []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(kb, &kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob("k8s/*.yaml")
	for _, f := range files {
		base := filepath.Base(f)
		listed := slices.Contains(kust.Resources, base)
		switch base {
		case "kustomization.yaml":
		case "secrets.example.yaml":
			if listed {
				t.Error("kustomization.yaml applies secrets.example.yaml (placeholders must not be deployed)")
			}
		default:
			if !listed {
				t.Errorf("kustomization.yaml does not list %s", base)
			}
		}
	}
	for _, r := range kust.Resources {
		if _, err := os.Stat(filepath.Join("k8s", r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}
}

// checkEnv fails the test if where sets an OPENVISIT_* variable name that
// is not among the ones the config knows.
func checkEnv(t *testing.T, known []string, where, name string) {
	t.Helper()
	if strings.HasPrefix(name, "OPENVISIT_") && !slices.Contains(known, name) {
		t.Errorf("%s sets %s, which config does not know", where, name)
	}
}

// pdbSelectors is the set of selectors (formatted) that the
// PodDisruptionBudgets select, each PDB checked for a selector and one of
// minAvailable, maxUnavailable.
func pdbSelectors(t *testing.T, byKind map[string][]object) map[string]bool {
	t.Helper()
	sels := map[string]bool{}
	for _, o := range byKind["PodDisruptionBudget"] {
		p := o.obj.(*policyv1.PodDisruptionBudget)
		if p.Spec.Selector == nil || (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB %s: needs a selector and one of minAvailable, maxUnavailable", o.name)
			continue
		}
		sels[metav1.FormatLabelSelector(p.Spec.Selector)] = true
	}
	return sels
}

// workload is a manifest that runs pods.
type workload struct {
	o        object
	selector *metav1.LabelSelector
	tmpl     corev1.PodTemplateSpec
	serving  bool // a long-running server (not a Job)
}

// workloads are the Deployments, StatefulSets and Jobs.
func workloads(byKind map[string][]object) []workload {
	var ws []workload
	for _, o := range byKind["Deployment"] {
		d := o.obj.(*appsv1.Deployment)
		ws = append(ws, workload{o, d.Spec.Selector, d.Spec.Template, true})
	}
	for _, o := range byKind["StatefulSet"] {
		s := o.obj.(*appsv1.StatefulSet)
		ws = append(ws, workload{o, s.Spec.Selector, s.Spec.Template, true})
	}
	for _, o := range byKind["Job"] {
		j := o.obj.(*batchv1.Job)
		ws = append(ws, workload{o, j.Spec.Selector, j.Spec.Template, false})
	}
	return ws
}

// checkWorkload checks that a workload is safe and observable, and adds
// the roles its servers run to roles.
func checkWorkload(t *testing.T, w workload, pdbSelectors map[string]bool, known []string, roles map[string]bool) {
	t.Helper()
	name := w.o.kind + " " + w.o.name
	spec := w.tmpl.Spec
	if w.serving {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || !sel.Matches(labelSet(w.tmpl.Labels)) {
			t.Errorf("%s: selector does not match its pod template", name)
		}
		if !pdbSelectors[metav1.FormatLabelSelector(w.selector)] {
			t.Errorf("%s: no PodDisruptionBudget selects it", name)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false (it calls no Kubernetes API)", name)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod must run as a non-root user", name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile RuntimeDefault", name)
	}
	for _, c := range spec.Containers {
		cname := name + " container " + c.Name
		checkContainer(t, cname, c, known)
		if w.serving {
			checkServer(t, cname, spec, c, roles)
		}
	}
}

// checkContainer checks a container's image pin, security context,
// resources, and environment (known names, no literal secrets).
func checkContainer(t *testing.T, cname string, c corev1.Container, known []string) {
	t.Helper()
	if !pinned(c.Image) {
		t.Errorf("%s: image %q is not pinned to a version or digest", cname, c.Image)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("%s: needs allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL, not privileged", cname)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("%s: no %s limit", cname, res)
		}
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("%s: no %s request", cname, res)
		}
	}
	for _, e := range c.Env {
		checkEnv(t, known, cname, e.Name)
		if strings.Contains(e.Name, "SECRET") || strings.HasSuffix(e.Name, "_KEY") || strings.HasSuffix(e.Name, "DATABASE_URL") {
			if e.Value != "" {
				t.Errorf("%s: %s has a literal value; secrets come from a Secret", cname, e.Name)
			}
		}
	}
}

// checkServer checks a long-running server's probes and arguments, adds
// the roles it runs to roles, and checks a media node further.
func checkServer(t *testing.T, cname string, spec corev1.PodSpec, c corev1.Container, roles map[string]bool) {
	t.Helper()
	for _, p := range []struct {
		what, path string
		probe      *corev1.Probe
	}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s: %s probe must GET %s over HTTPS", cname, p.what, p.path)
		}
	}
	if len(c.Args) < 3 || c.Args[0] != "serve" || c.Args[1] != "--roles" {
		t.Errorf("%s: args %v, want serve --roles ROLE", cname, c.Args)
		return
	}
	for _, r := range strings.Split(c.Args[2], ",") {
		roles[r] = true
	}
	if c.Args[2] == "media" {
		checkMedia(t, cname, spec, c)
	}
}

// TestDeployOpsNotPublic checks what deploy/README.md promises about the
// edge: every serving workload exposes its metrics on the operational
// port (not the public one) with scrape annotations, nothing routes the
// public Ingress or a Service to it, a NetworkPolicy lets only the
// monitoring namespace reach it on the api, and the api believes
// X-Forwarded-For from configured proxies only.
func TestDeployOpsNotPublic(t *testing.T) {
	objs := decode(t)
	cm := configMap(t)
	for _, o := range objs {
		var tmpl corev1.PodTemplateSpec
		switch d := o.obj.(type) {
		case *appsv1.Deployment:
			tmpl = d.Spec.Template
		case *appsv1.StatefulSet:
			tmpl = d.Spec.Template
		case *corev1.Service:
			for _, p := range d.Spec.Ports {
				if p.TargetPort.String() == "metrics" || p.Port == opsPort || p.TargetPort.IntValue() == opsPort {
					t.Errorf("Service %s routes to the operational port", o.name)
				}
			}
			continue
		case *networkingv1.Ingress:
			for _, r := range d.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					if bp := p.Backend.Service.Port; bp.Name != "https" {
						t.Errorf("Ingress %s routes to port %v, want https only", o.name, bp)
					}
				}
			}
			continue
		default:
			continue
		}
		checkOpsPort(t, o.kind+" "+o.name, tmpl, cm)
	}
	if _, ok := cm["OPENVISIT_HTTP_TRUSTED_PROXIES"]; ok {
		t.Error("ConfigMap: trusted proxies belong to the api alone (media nodes face browsers directly)")
	}
	if !apiMetricsGuarded(objs) {
		t.Error("no NetworkPolicy limits the api's metrics port to a monitoring namespace")
	}
}

// opsPort is the operational (metrics) port of every serving workload.
const opsPort = 9464

// checkOpsPort checks a serving workload's pod template: scrape
// annotations, the ops address on the metrics port (bound to the node's
// address on the host network), a "metrics" container port, and trusted
// proxies on the api alone.
func checkOpsPort(t *testing.T, name string, tmpl corev1.PodTemplateSpec, cm map[string]string) {
	t.Helper()
	a := tmpl.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9464" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: no prometheus.io scrape annotations for :9464/metrics", name)
	}
	c := tmpl.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	ops := env["OPENVISIT_HTTP_OPS_ADDR"]
	if ops == "" {
		ops = cm["OPENVISIT_HTTP_OPS_ADDR"]
	}
	if !strings.HasSuffix(ops, ":9464") {
		t.Errorf("%s: http.ops_addr %q, want the metrics port 9464", name, ops)
	}
	if tmpl.Spec.HostNetwork && !strings.HasPrefix(ops, "$(POD_IP):") {
		t.Errorf("%s: on the host network, http.ops_addr must bind the node's address, not every interface", name)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == opsPort }) {
		t.Errorf("%s: no container port \"metrics\" 9464", name)
	}
	if c.Args[2] == "api" {
		proxies, ok := env["OPENVISIT_HTTP_TRUSTED_PROXIES"]
		if p, err := config.ParseTrustedProxies(strings.Split(proxies, ",")); !ok || err != nil || len(p) == 0 {
			t.Errorf("%s: OPENVISIT_HTTP_TRUSTED_PROXIES %q: want the Ingress controller's addresses (%v)", name, proxies, err)
		}
	} else if _, ok := env["OPENVISIT_HTTP_TRUSTED_PROXIES"]; ok {
		t.Errorf("%s: only the api sits behind the Ingress; it alone trusts proxies", name)
	}
}

// apiMetricsGuarded reports whether a NetworkPolicy on the api lets only a
// monitoring namespace reach its metrics port.
func apiMetricsGuarded(objs []object) bool {
	guarded := false
	for _, o := range objs {
		np, ok := o.obj.(*networkingv1.NetworkPolicy)
		if !ok || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "api" {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.String() == "metrics" {
					guarded = len(rule.From) > 0 && rule.From[0].NamespaceSelector != nil
				}
			}
		}
	}
	return guarded
}

// checkMedia checks a media node: reachable on UDP, named after its pod,
// and given longer to stop than its calls may take to drain.
func checkMedia(t *testing.T, name string, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	udp := false
	for _, p := range c.Ports {
		if p.Protocol == corev1.ProtocolUDP && (spec.HostNetwork || p.HostPort != 0) {
			udp = true
		}
	}
	if !udp {
		t.Errorf("%s: media needs a UDP port on the host network (or a UDP LoadBalancer per node)", name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for _, k := range []string{"OPENVISIT_SFU_NODE_ID", "OPENVISIT_CLUSTER_NODE_URL", "OPENVISIT_PUBLIC_URL"} {
		if !strings.Contains(env[k], "$(POD_NAME)") {
			t.Errorf("%s: %s must derive from the pod name (one registry node per pod)", name, k)
		}
	}
	cm := configMap(t)
	drain, err := time.ParseDuration(cm["OPENVISIT_CLUSTER_DRAIN_TIMEOUT"])
	if err != nil {
		t.Errorf("ConfigMap: OPENVISIT_CLUSTER_DRAIN_TIMEOUT: %v", err)
		return
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= int64(drain.Seconds()) {
		t.Errorf("%s: terminationGracePeriodSeconds must exceed the drain timeout (%v)", name, drain)
	}
}

func configMap(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("k8s/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }
