/** Not a migration: its name has no id, so the loader skips it. */
export const note = "helpers next to migrations are allowed"
