// Package approval pauses a command until humans approve it.
//
// A Service creates a pending record.Approval for a command whose decision is
// "approve" (who asked, what, under which rule, which group must approve, how
// many distinct approvers, until when), notifies the configured webhooks, and
// lets the proxy Wait for the outcome. Humans resolve it with Vote: the
// caller passes the approver's verified identity and groups, the Service
// checks membership of the approver group, the store refuses self-approval
// and duplicate votes, and quorum is counted per distinct approver. Any deny
// vote denies. An approval that reaches its timeout expires.
//
// State lives in the record store so that several gateways share it: an
// approval given through one gateway's admin API releases a statement
// waiting on another, through the store's WatchApprovals notifications.
//
// Waiting never holds a lock: each waiter re-reads its approval when the
// store signals a change, and at its deadline.
package approval
