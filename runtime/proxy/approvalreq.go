package proxy

import (
	"time"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
)

func approvalRequest(s *Session, sql, ruleID string, spec *bundle.ApprovalSpec, timeout time.Duration) approval.Request {
	return approval.Request{
		SessionID: s.ID(), Identity: s.Identity().Name, Resource: s.resource.Name,
		Command: sql, RuleID: ruleID, Group: spec.Group, Count: spec.Count, Timeout: timeout,
	}
}
