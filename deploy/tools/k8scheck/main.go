// Command k8scheck checks the Kubernetes recipe without a cluster or the
// network. It renders the kustomization with the kustomize library (as
// kubectl apply -k does), decodes every rendered object, and every object
// of the extra files given, strictly into the typed structs of k8s.io/api
// (an unknown or misspelt field, a wrong type or a duplicate key is an
// error), and then checks what ties the objects together: selectors and
// labels, port names, volumes and mounts, the Secrets the pods need, and
// the hardening the recipe promises.
//
//	go run ./k8scheck -secrets ../kubernetes/secret.example.yaml ../kubernetes
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func main() {
	secretsFile := flag.String("secrets", "", "YAML file of the Secrets created outside the kustomization")
	out := flag.String("o", "", "also write the rendered manifests here")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: k8scheck [-secrets FILE] [-o FILE] KUSTOMIZATION_DIR")
		os.Exit(2)
	}
	problems, err := run(flag.Arg(0), *secretsFile, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8scheck:", err)
		os.Exit(1)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

var scheme = runtime.NewScheme()

func init() {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
}

type objects struct {
	list []runtime.Object
}

// decode decodes one YAML document strictly into its typed struct.
func decode(doc []byte, where string) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	obj, err := scheme.New(gvk)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: not a known type: %w", where, gvk, err)
	}
	// Case-sensitive and strict, as the API server decodes: an unknown
	// field, a field in the wrong case or a duplicate key is an error.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", where, gvk.Kind, err)
	}
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", where, gvk.Kind, err)
	}
	if len(strict) > 0 {
		return nil, fmt.Errorf("%s: %s: %v", where, gvk.Kind, strict)
	}
	return obj, nil
}

func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func run(dir, secretsFile, out string) ([]string, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	rendered, err := rm.AsYaml()
	if err != nil {
		return nil, err
	}
	if out != "" {
		if err := os.WriteFile(out, rendered, 0o644); err != nil {
			return nil, err
		}
	}
	var objs objects
	kinds := map[string]int{}
	for i, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		o, err := decode(b, fmt.Sprintf("rendered object %d (%s %s)", i, r.GetKind(), r.GetName()))
		if err != nil {
			return nil, err
		}
		objs.list = append(objs.list, o)
		kinds[r.GetKind()]++
	}
	external := map[string]*corev1.Secret{}
	if secretsFile != "" {
		b, err := os.ReadFile(secretsFile)
		if err != nil {
			return nil, err
		}
		for i, d := range splitDocs(b) {
			o, err := decode(d, fmt.Sprintf("%s document %d", secretsFile, i+1))
			if err != nil {
				return nil, err
			}
			s, ok := o.(*corev1.Secret)
			if !ok {
				return nil, fmt.Errorf("%s: document %d is not a Secret", secretsFile, i+1)
			}
			external[s.Name] = s
		}
	}
	var ks []string
	for k, n := range kinds {
		ks = append(ks, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(ks)
	fmt.Printf("%s: kustomize rendered %d objects (%s); all decode strictly into k8s.io/api types\n", dir, len(objs.list), strings.Join(ks, ", "))
	return crossCheck(objs, external), nil
}

func crossCheck(objs objects, external map[string]*corev1.Secret) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	configMaps := map[string]*corev1.ConfigMap{}
	var deployments []*appsv1.Deployment
	var services []*corev1.Service
	var hpas []*autoscalingv2.HorizontalPodAutoscaler
	var pdbs []*policyv1.PodDisruptionBudget
	var netpols []*networkingv1.NetworkPolicy
	for _, o := range objs.list {
		switch v := o.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *appsv1.Deployment:
			deployments = append(deployments, v)
		case *corev1.Service:
			services = append(services, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpas = append(hpas, v)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, v)
		case *networkingv1.NetworkPolicy:
			netpols = append(netpols, v)
		}
	}
	if len(deployments) != 1 {
		bad("want exactly one Deployment, have %d", len(deployments))
		return problems
	}
	d := deployments[0]
	pod := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(pod) {
		bad("Deployment %s: selector does not match its pod labels", d.Name)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		bad("Deployment %s: fewer than 2 replicas", d.Name)
	}
	ps := d.Spec.Template.Spec
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("Deployment %s: pod securityContext lacks runAsNonRoot or seccompProfile RuntimeDefault", d.Name)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			if configMaps[v.ConfigMap.Name] == nil {
				bad("volume %s: ConfigMap %s is not in the kustomization", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if external[v.Secret.SecretName] == nil {
				bad("volume %s: Secret %s is not in the secrets file", v.Name, v.Secret.SecretName)
			}
		}
	}
	mounts := map[string]string{} // mount path -> volume
	ports := map[string]int32{}
	for _, c := range ps.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			bad("container %s: no securityContext", c.Name)
		default:
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad("container %s: readOnlyRootFilesystem is not true", c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad("container %s: allowPrivilegeEscalation is not false", c.Name)
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0 {
				bad("container %s: capabilities are not drop [ALL]", c.Name)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			bad("container %s: cpu/memory requests and a memory limit are needed", c.Name)
		}
		for _, pr := range []struct {
			name string
			p    *corev1.Probe
			path string
		}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
			if pr.p == nil || pr.p.HTTPGet == nil {
				bad("container %s: no HTTP %s probe", c.Name, pr.name)
				continue
			}
			if pr.p.HTTPGet.Path != pr.path {
				bad("container %s: %s probe path %s, want %s", c.Name, pr.name, pr.p.HTTPGet.Path, pr.path)
			}
			if !portNamed(pr.p.HTTPGet.Port, ports) || portValue(pr.p.HTTPGet.Port, ports) != 9090 {
				bad("container %s: %s probe is not on the admin port 9090", c.Name, pr.name)
			}
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				bad("container %s: mount %s names no volume", c.Name, m.Name)
			}
			mounts[m.MountPath] = m.Name
		}
	}
	for _, p := range []string{"/var/lib/crmgate", "/var/log/crmgate"} {
		if mounts[p] == "" {
			bad("Deployment %s: %s is not a volume (the root filesystem is read-only)", d.Name, p)
		}
	}
	// The gateway configuration's file references must be keys of the
	// mounted Secrets, and its policy folder the mounted policy ConfigMap.
	for mountPath, vol := range mounts {
		v := volumes[vol]
		if v.ConfigMap == nil || configMaps[v.ConfigMap.Name] == nil {
			continue
		}
		cfg, ok := configMaps[v.ConfigMap.Name].Data["crmgate.yaml"]
		if !ok {
			continue
		}
		for _, m := range regexp.MustCompile(`(?:file:|cert: |key: |dir: )(/[A-Za-z0-9._/-]+)`).FindAllStringSubmatch(stripComments(cfg), -1) {
			path := m[1]
			if !mountedFile(path, mounts, volumes, external, configMaps) {
				bad("ConfigMap %s (%s/crmgate.yaml): %s is not provided by any mount", v.ConfigMap.Name, mountPath, path)
			}
		}
	}
	for _, s := range services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(pod) {
			bad("Service %s: selector does not match the gateway pods", s.Name)
		}
		for _, p := range s.Spec.Ports {
			if !portNamed(p.TargetPort, ports) {
				bad("Service %s: targetPort %s is not a container port", s.Name, p.TargetPort.String())
			}
		}
	}
	for _, h := range hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name {
			bad("HorizontalPodAutoscaler %s: scales %s/%s, not the Deployment", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			bad("HorizontalPodAutoscaler %s: minReplicas under 2 or above maxReplicas", h.Name)
		}
	}
	for _, p := range pdbs {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || !s.Matches(pod) {
			bad("PodDisruptionBudget %s: selector does not match the gateway pods", p.Name)
		}
	}
	gatewayPolicy := false
	for _, np := range netpols {
		s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			bad("NetworkPolicy %s: %v", np.Name, err)
			continue
		}
		if s.Matches(pod) {
			gatewayPolicy = true
			for _, r := range np.Spec.Ingress {
				for _, p := range r.Ports {
					if p.Port != nil && !portNamed(*p.Port, ports) {
						bad("NetworkPolicy %s: port %s is not a container port", np.Name, p.Port.String())
					}
				}
			}
			continue
		}
		// Policies of other pods admit the gateway pods only.
		for _, r := range np.Spec.Ingress {
			for _, f := range r.From {
				ps, err := metav1.LabelSelectorAsSelector(f.PodSelector)
				if f.PodSelector == nil || f.NamespaceSelector != nil || f.IPBlock != nil || err != nil || !ps.Matches(pod) {
					bad("NetworkPolicy %s: admits more than the gateway pods", np.Name)
				}
			}
			if len(r.From) == 0 {
				bad("NetworkPolicy %s: admits everyone", np.Name)
			}
		}
	}
	if !gatewayPolicy {
		bad("no NetworkPolicy selects the gateway pods")
	}
	sort.Strings(problems)
	return problems
}

func portNamed(p intstr.IntOrString, ports map[string]int32) bool {
	if p.Type == intstr.String {
		_, ok := ports[p.StrVal]
		return ok
	}
	for _, v := range ports {
		if v == p.IntVal {
			return true
		}
	}
	return false
}

func portValue(p intstr.IntOrString, ports map[string]int32) int32 {
	if p.Type == intstr.String {
		return ports[p.StrVal]
	}
	return p.IntVal
}

// mountedFile reports whether path is a key of a Secret or ConfigMap volume
// mounted at its folder, or (for a folder) a mounted volume.
func mountedFile(path string, mounts map[string]string, volumes map[string]corev1.Volume, external map[string]*corev1.Secret, cms map[string]*corev1.ConfigMap) bool {
	if vol, ok := mounts[path]; ok {
		_ = vol
		return true
	}
	i := strings.LastIndex(path, "/")
	dir, name := path[:i], path[i+1:]
	vol, ok := mounts[dir]
	if !ok {
		// A file below a writable volume (audit log, spool folder).
		for m := range mounts {
			if strings.HasPrefix(path, m+"/") {
				v := volumes[mounts[m]]
				return v.EmptyDir != nil || v.PersistentVolumeClaim != nil
			}
		}
		return false
	}
	v := volumes[vol]
	switch {
	case v.Secret != nil:
		s := external[v.Secret.SecretName]
		if s == nil {
			return false
		}
		_, inData := s.Data[name]
		_, inString := s.StringData[name]
		return inData || inString
	case v.ConfigMap != nil:
		c := cms[v.ConfigMap.Name]
		if c == nil {
			return false
		}
		_, ok := c.Data[name]
		return ok
	case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
		return true
	}
	return false
}
