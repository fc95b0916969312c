// guardUnload asks the browser to confirm leaving the page while active()
// says a transfer would be cut off (the browser shows its own wording).
export function guardUnload(active: () => boolean): void {
  window.addEventListener("beforeunload", (e) => {
    if (!active()) return;
    e.preventDefault();
    // Older browsers need returnValue set to show the dialog.
    e.returnValue = "";
  });
}
