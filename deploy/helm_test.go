package deploy_test

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/openvisit/openvisit/internal/config"
)

const chartDir = "helm/openvisit"

// renderChart renders the chart with Helm's own engine (as `helm template`
// does: the chart's values coalesced with valuesFile's, the values schema
// checked, default capabilities) and decodes every object strictly into
// its k8s.io/api type. valuesFile "" renders the defaults.
func renderChart(t *testing.T, valuesFile string) []object {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals := map[string]any{}
	if valuesFile != "" {
		if vals, err = common.ReadValuesFile(filepath.Join(chartDir, valuesFile)); err != nil {
			t.Fatalf("%s: %v", valuesFile, err)
		}
	}
	rv, err := chartutil.ToRenderValues(ch, vals,
		common.ReleaseOptions{Name: "openvisit", Namespace: "openvisit", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []object
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") {
			continue // NOTES.txt, helpers
		}
		for i, doc := range splitDocs([]byte(out[n])) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s doc %d: %v\n%s", n, i, err, doc)
			}
			into := typedObject(tm)
			if into == nil {
				t.Fatalf("%s doc %d: unexpected %s %s", n, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Errorf("%s doc %d (%s): %v\n%s", n, i, tm.Kind, err, doc)
				continue
			}
			objs = append(objs, object{file: filepath.Base(n), kind: tm.Kind, name: into.(metav1.Object).GetName(), obj: into})
		}
	}
	if len(objs) == 0 {
		t.Fatal("the chart rendered no objects")
	}
	return objs
}

// container is what is compared of one workload's container.
type container struct {
	Ports                         []corev1.ContainerPort
	Startup, Readiness, Liveness  *corev1.Probe
	PodSecurity                   *corev1.PodSecurityContext
	Security                      *corev1.SecurityContext
	Image                         string
	Args                          []string
	HostNetwork                   bool
	TerminationGracePeriodSeconds *int64
}

// containers maps "Kind/name/container" to what is compared.
func containers(objs []object) map[string]container {
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.kind] = append(byKind[o.kind], o)
	}
	out := map[string]container{}
	for _, w := range workloads(byKind) {
		spec := w.tmpl.Spec
		for _, c := range spec.Containers {
			out[w.o.kind+"/"+w.o.name+"/"+c.Name] = container{Ports: c.Ports, Startup: c.StartupProbe,
				Readiness: c.ReadinessProbe, Liveness: c.LivenessProbe, PodSecurity: spec.SecurityContext,
				Security: c.SecurityContext, Image: c.Image, Args: c.Args, HostNetwork: spec.HostNetwork,
				TerminationGracePeriodSeconds: spec.TerminationGracePeriodSeconds}
		}
	}
	return out
}

// servicePorts maps "Service/name" to its ports.
func servicePorts(objs []object) map[string][]corev1.ServicePort {
	out := map[string][]corev1.ServicePort{}
	for _, o := range objs {
		if s, ok := o.obj.(*corev1.Service); ok {
			out["Service/"+o.name] = s.Spec.Ports
		}
	}
	return out
}

// TestHelmChartRenders renders the chart with Helm's Go packages, with its
// default values and with the production example, and checks that the
// objects are valid and match what the Kustomize manifests declare: the
// same workloads, ports, probes and security contexts (and, by default,
// the same image and settings); the project's own checks of a workload
// (TestDeployManifestsValid's) apply to them as well.
func TestHelmChartRenders(t *testing.T) {
	k8s := decode(t)
	want := containers(k8s)
	// The migrate Job runs as a hook in the chart: the same container.
	for _, tc := range []struct {
		values   string
		defaults bool
	}{{"", true}, {"values-production.yaml", false}} {
		t.Run("values="+tc.values, func(t *testing.T) {
			objs := renderChart(t, tc.values)
			got := containers(objs)
			ignore := cmp.FilterPath(func(p cmp.Path) bool {
				if tc.defaults {
					return false
				}
				// The production example pins its own image tag.
				f := p.Last().String()
				return f == ".Image"
			}, cmp.Ignore())
			if diff := cmp.Diff(want, got, ignore); diff != "" {
				t.Errorf("chart's workloads differ from deploy/k8s (-k8s +chart):\n%s", diff)
			}
			if diff := cmp.Diff(servicePorts(k8s), servicePorts(objs)); diff != "" {
				t.Errorf("chart's Services differ from deploy/k8s (-k8s +chart):\n%s", diff)
			}
			checkChartObjects(t, objs, tc.defaults)
		})
	}
}

// checkChartObjects applies the manifests' own checks to the rendered
// objects and, with the defaults, compares the ConfigMap with deploy/k8s's.
func checkChartObjects(t *testing.T, objs []object, defaults bool) {
	t.Helper()
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.kind] = append(byKind[o.kind], o)
	}
	roles := map[string]bool{}
	pdbs := pdbSelectors(t, byKind)
	known := config.EnvNames()
	for _, w := range workloads(byKind) {
		checkWorkload(t, w, pdbs, known, roles)
	}
	for _, r := range []string{"api", "media", "recorder"} {
		if !roles[r] {
			t.Errorf("the chart runs no %s role", r)
		}
	}
	if len(byKind["ConfigMap"]) != 1 {
		t.Fatalf("the chart renders %d ConfigMaps, want 1", len(byKind["ConfigMap"]))
	}
	data := byKind["ConfigMap"][0].obj.(*corev1.ConfigMap).Data
	for k := range data {
		checkEnv(t, known, "chart ConfigMap", k)
	}
	if defaults {
		if diff := cmp.Diff(configMap(t), data); diff != "" {
			t.Errorf("chart's default settings differ from deploy/k8s/configmap.yaml (-k8s +chart):\n%s", diff)
		}
	}
}
