package datastorage_test

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var _ = Describe("audit events", func() {
	It("records an event and reads it back by correlation ID", func(ctx SpecContext) {
		cid := uniqueID("roundtrip")
		code, got := record(ctx, event{CorrelationID: cid, EventType: "alert.received", Service: "gateway", Payload: json.RawMessage(`{"alert":"HighCPU"}`)}, "")
		Expect(code).To(Equal(http.StatusCreated))
		Expect(got.ID).To(BeNumerically(">", 0))

		events, err := query(ctx, cid)
		Expect(err).NotTo(HaveOccurred())
		Expect(events).To(HaveLen(1))
		Expect(events[0].ID).To(Equal(got.ID))
		Expect(events[0].EventType).To(Equal("alert.received"))
		Expect(events[0].Payload).To(MatchJSON(`{"alert":"HighCPU"}`))
	})

	It("records an event once per Idempotency-Key", func(ctx SpecContext) {
		cid := uniqueID("idempotent")
		key := uniqueID("key")
		code, first := record(ctx, event{CorrelationID: cid, EventType: "a", Service: "s"}, key)
		Expect(code).To(Equal(http.StatusCreated))
		code, again := record(ctx, event{CorrelationID: cid, EventType: "a", Service: "s"}, key)
		Expect(code).To(Equal(http.StatusOK))
		Expect(again.Duplicate).To(BeTrue())
		Expect(again.ID).To(Equal(first.ID))

		events, err := query(ctx, cid)
		Expect(err).NotTo(HaveOccurred())
		Expect(events).To(HaveLen(1))
	})

	It("rejects an event without its required fields", func(ctx SpecContext) {
		code, _ := record(ctx, event{CorrelationID: uniqueID("bad")}, "")
		Expect(code).To(Equal(http.StatusBadRequest))
	})

	It("keeps events across a restart of the datastorage pod", func(ctx SpecContext) {
		cid := uniqueID("restart")
		code, got := record(ctx, event{CorrelationID: cid, EventType: "before.restart", Service: "e2e"}, "")
		Expect(code).To(Equal(http.StatusCreated))

		pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=datastorage"})
		Expect(err).NotTo(HaveOccurred())
		Expect(pods.Items).To(HaveLen(1))
		old := pods.Items[0].UID
		Expect(kube.CoreV1().Pods(namespace).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{})).To(Succeed())

		By("waiting for a new, ready datastorage pod")
		Eventually(func(g Gomega) {
			pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=datastorage"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(1))
			p := pods.Items[0]
			g.Expect(p.UID).NotTo(Equal(old))
			g.Expect(isReady(&p)).To(BeTrue())
		}).WithContext(ctx).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		By("reading the event through the new pod")
		Eventually(func() ([]event, error) { return query(ctx, cid) }).WithContext(ctx).
			WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).
			Should(ContainElement(HaveField("ID", got.ID)))
	}, SpecTimeout(3*time.Minute))
})

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
