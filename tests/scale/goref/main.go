// A minimal controller-runtime reconciler of the operator's contract for the benchmark's
// burst (not part of the product): for each Connector of one namespace, the status Starting
// and its event, the Deployment (server-side apply of the operator's own, as the floor
// takes it), then Running and its event once that Deployment is available. It runs beside
// the operator under the same identity, so that their CPU is compared in one run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

var connectorGVK = schema.GroupVersionKind{Group: "dataspace.dev", Version: "v1alpha1", Kind: "Connector"}

type reconciler struct {
	client.Client
	template appsv1.DeploymentSpec
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &unstructured.Unstructured{}
	c.SetGroupVersionKind(connectorGVK)
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	name := "connector-" + c.GetName()
	d := &appsv1.Deployment{}
	err := r.Get(ctx, types.NamespacedName{Namespace: c.GetNamespace(), Name: name}, d)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	found := err == nil
	want := "Starting"
	if found && available(d) {
		want = "Running"
	}
	if phase, _, _ := unstructured.NestedString(c.Object, "status", "phase"); phase != want {
		if err := r.record(ctx, c, want); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !found {
		return ctrl.Result{}, r.Patch(ctx, r.desired(c, name), client.Apply,
			client.FieldOwner("goref"), client.ForceOwnership)
	}
	return ctrl.Result{}, nil
}

func available(d *appsv1.Deployment) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= 1 &&
		d.Status.UpdatedReplicas >= 1
}

// record writes the phase, then its event.
func (r *reconciler) record(ctx context.Context, c *unstructured.Unstructured, phase string) error {
	body, _ := json.Marshal(map[string]any{"status": map[string]any{
		"phase": phase, "observedGeneration": c.GetGeneration(),
	}})
	if err := r.Status().Patch(ctx, c, client.RawPatch(types.MergePatchType, body)); err != nil {
		return err
	}
	now := metav1.NewTime(time.Now())
	return r.Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: c.GetName() + ".", Namespace: c.GetNamespace()},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: connectorGVK.GroupVersion().String(), Kind: "Connector", Name: c.GetName(),
			Namespace: c.GetNamespace(), UID: c.GetUID(), ResourceVersion: c.GetResourceVersion(),
		},
		Type: corev1.EventTypeNormal, Reason: phase, Message: "The Connector is " + phase + ".",
		Source: corev1.EventSource{Component: "goref"}, FirstTimestamp: now, LastTimestamp: now,
		Count: 1,
	})
}

func (r *reconciler) desired(c *unstructured.Unstructured, name string) *appsv1.Deployment {
	spec := *r.template.DeepCopy()
	labels := map[string]string{"app.kubernetes.io/instance": c.GetName()}
	spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	spec.Template.Labels = labels
	spec.Replicas = ptr.To[int32](1)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: c.GetNamespace(), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: connectorGVK.GroupVersion().String(), Kind: "Connector",
				Name: c.GetName(), UID: c.GetUID(), Controller: ptr.To(true),
				BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: spec,
	}
}

func main() {
	namespace := flag.String("namespace", "", "the one namespace reconciled")
	templateFile := flag.String("template", "", "a Deployment (JSON) whose spec is applied")
	workers := flag.Int("workers", 4, "concurrent reconciles")
	flag.Parse()
	if err := run(*namespace, *templateFile, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "goref:", err)
		os.Exit(1)
	}
}

func run(namespace, templateFile string, workers int) error {
	ctrl.SetLogger(zap.New()) // errors only reach its log (the benchmark's goref.log)
	raw, err := os.ReadFile(templateFile)
	if err != nil {
		return err
	}
	var model appsv1.Deployment
	if err := json.Unmarshal(raw, &model); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}},
		// Connectors are read from the cache too (as Deployments are): no GET, and none granted.
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return err
	}
	connector := &unstructured.Unstructured{}
	connector.SetGroupVersionKind(connectorGVK)
	r := &reconciler{Client: mgr.GetClient(), template: model.Spec}
	err = ctrl.NewControllerManagedBy(mgr).For(connector).Owns(&appsv1.Deployment{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).Complete(r)
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
