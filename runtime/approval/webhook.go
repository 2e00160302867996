package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/runtime/record"
)

// Webhook posts new approvals to an HTTP endpoint, as generic JSON or as a
// Slack-compatible message ({"text": ...}, accepted by Slack incoming
// webhooks and by Mattermost and Teams connectors that read "text").
type Webhook struct {
	URL    string
	Format string // "json" (default) | "slack"
	// AdminURL is the externally reachable admin URL, used to link to the
	// approval.
	AdminURL string
	Client   *http.Client
}

var _ Notifier = (*Webhook)(nil)

// webhookPayload is the generic JSON body. The command text is included
// because approvers need it to decide; it never contains credentials.
type webhookPayload struct {
	Event     string    `json:"event"`
	ID        string    `json:"id"`
	Identity  string    `json:"identity"`
	Resource  string    `json:"resource"`
	Command   string    `json:"command"`
	RuleID    string    `json:"rule_id"`
	Group     string    `json:"approver_group"`
	Count     int       `json:"count"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url,omitempty"`
	Approve   string    `json:"approve_command"`
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, a record.Approval) error {
	p := webhookPayload{
		Event: "approval.requested", ID: a.ID, Identity: a.Identity, Resource: a.Resource,
		Command: a.Command, RuleID: a.RuleID, Group: a.Group, Count: a.Count, ExpiresAt: a.ExpiresAt,
		Approve: "gatehouse approvals approve " + a.ID + " --reason '...'",
	}
	if w.AdminURL != "" {
		p.URL = w.AdminURL + "/ui/approvals#" + a.ID
	}
	var body any = p
	if w.Format == "slack" {
		text := fmt.Sprintf("*Approval needed* (%d of group `%s`, expires %s)\n*%s* on *%s* under rule `%s`:\n```%s```\nApprove: `%s`",
			a.Count, a.Group, a.ExpiresAt.UTC().Format(time.RFC3339), a.Identity, a.Resource, a.RuleID, a.Command, p.Approve)
		if p.URL != "" {
			text += "\n" + p.URL
		}
		body = map[string]string{"text": text}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: HTTP status %d", resp.StatusCode)
	}
	return nil
}
