// Damp levels, case statuses and device statuses as people read them: written from core/damp.py,
// core/cases.py and core/devices.py by `python -m dashboards.damp_words`. Do not edit by hand.

export const LEVELS = {
  "emergency": {
    "label": "Emergency",
    "plain": "Emergency: a serious risk to health that must be made safe within 24 hours",
    "explain": "Your landlord has confirmed a serious risk to health. They must make your home safe within 24 hours."
  },
  "red": {
    "label": "Red",
    "plain": "High risk of damp and mould",
    "explain": "The readings from your home show conditions in which mould is likely to grow. Your landlord has been told."
  },
  "watch": {
    "label": "Watch",
    "plain": "Some risk of damp and mould: it needs watching",
    "explain": "The readings show conditions that could lead to damp or mould if they carry on."
  },
  "advice": {
    "label": "Advice",
    "plain": "Low risk: a few simple steps can help",
    "explain": "Mostly fine, with some spells of high humidity. The tips below can help."
  },
  "green": {
    "label": "Green",
    "plain": "Low risk of damp and mould",
    "explain": "The readings show no sign of the conditions that lead to damp and mould."
  },
  "insufficient_data": {
    "label": "Not enough data",
    "plain": "Not enough readings yet to judge the risk",
    "explain": "We need more readings from your sensors before we can say. Check that they are switched on."
  },
  "not_assessed": {
    "label": "Not assessed yet",
    "plain": "Not assessed yet: the readings have not been looked at",
    "explain": "We have not looked at the readings from your home yet."
  }
};
export const CASE_STATUS_TEXT = {
  "open": "Open: not yet acknowledged",
  "investigating": "Being investigated",
  "investigated": "Investigated: written summary to send",
  "safety_work": "Safety work to do",
  "preventative_work": "Preventative work to start",
  "works_started": "Preventative work started",
  "closed": "Closed"
};
export const DEVICE_STATUS_LABELS = {
  "online": "Online",
  "stale": "Stale: not heard from recently",
  "offline": "Offline"
};
export const DEVICE_STATUS_WORDS = {
  "online": "working",
  "stale": "not heard from recently",
  "offline": "switched off or out of range"
};
