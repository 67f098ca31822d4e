// Gritting's words as people read them, and which actions treat and which statuses are active: written
// from core/gritting/vocab.py by `python -m dashboards.gritting_words`. Do not edit by hand.

export const ACTION_LABELS = {
  "none": "No treatment needed",
  "monitor": "Monitor",
  "precautionary_salt": "Precautionary salting",
  "salt": "Salting",
  "plough_and_salt": "Plough and salt",
  "escalate": "Escalated to the duty officer"
};
export const STATUS_LABELS = {
  "issued": "Issued, not yet acknowledged",
  "acknowledged": "Acknowledged",
  "in_progress": "Treatment in progress",
  "completed": "Treatment completed",
  "cancelled": "Cancelled",
  "superseded": "Superseded",
  "escalated": "Escalated: not acknowledged in time"
};
export const EVENT_LABELS = {
  "issued": "Decision issued",
  "acknowledged": "Acknowledged",
  "started": "Run started",
  "completed": "Run completed",
  "run_cancelled": "Run called back",
  "cancelled": "Decision cancelled",
  "superseded": "Replaced by a newer decision",
  "escalated": "Escalated: not acknowledged by its call-out time",
  "noted": "Note",
  "carried_over": "Carried over to the re-issued decision"
};
export const TREATING = ["precautionary_salt", "salt", "plough_and_salt", "escalate"];
export const ACTIVE = ["issued", "acknowledged", "in_progress", "escalated"];
export const RUN_ACTIONS = ["start", "complete", "cancel_run", "amend"];
export const ACTOR_LABELS = {
  "evaluator": "Placewatch (automatic)"
};
