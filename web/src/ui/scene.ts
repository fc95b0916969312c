// Test scenes: with window.ferryTest.scene set before the page loads (the
// screenshot tests do this), the page renders that fixed state through
// the same view functions the live pages use, and touches no network. It
// keeps the baselines free of what varies between runs: ticket ids,
// secrets, phrases, times and speeds.
import type { FileEntry, Manifest } from "../protocol/control";
import type { SaveMode } from "../sink/choose";
import { showAccount, type Me } from "./account";
import * as recv from "./receive_page";
import * as send from "./send_page";
import { $, showError, showPath, showPhrase, type TransferCard } from "./view";

export interface Scene {
  page: "send" | "receive";
  step: "idle" | "signin" | "ready" | "link" | "transferring" | "review" | "done" | "error";
  me?: Me;
  files?: FileEntry[];
  link?: string;
  expires?: number; // Unix seconds
  canShare?: boolean;
  phrase?: string[];
  path?: string;
  fileDone?: number[]; // bytes per file
  roots?: string[]; // per file, "" while not verified
  rate?: number; // bytes per second
  mode?: SaveMode;
  error?: string;
  title?: string; // of the error
}

export function sceneFromPage(): Scene | null {
  return (window as unknown as { ferryTest?: { scene?: Scene } }).ferryTest?.scene ?? null;
}

export function runScene(s: Scene): void {
  const files = s.files ?? [];
  const total = files.reduce((a, f) => a + f.size, 0);
  const man: Manifest = { t: "manifest", version: 1, chunkSize: 65472, totalSize: total, files };
  const roots = s.roots ?? files.map(() => "");
  const fileDone = s.fileDone ?? files.map(() => 0);
  const progress = {
    total,
    done: fileDone.reduce((a, b) => a + b, 0),
    files: files.length,
    filesDone: roots.filter(Boolean).length,
    fileDone,
    roots,
  };
  const connect = () => {
    if (s.phrase) showPhrase(s.phrase);
    if (s.path) showPath(s.path);
  };
  if (s.page === "send") {
    if (s.me) {
      showAccount(s.me);
      send.viewLimit(s.me);
    }
    if (s.step === "idle") send.viewIdle();
    else if (s.step === "signin") send.viewSignIn(s.me ?? { signInRequired: true, maySend: false });
    else if (s.step === "error") {
      send.viewIdle();
      showError(s.error ?? "");
    } else {
      const card: TransferCard = send.viewPicked(files, total, s.canShare ?? false);
      if (s.step === "link") {
        send.viewLink(s.link ?? "", s.expires ?? 0);
      } else {
        send.viewPaired();
        connect();
        send.viewSending();
        card.update(progress, s.rate ?? 0);
        if (s.step === "done") send.viewDone(card, roots, total, files.length);
      }
    }
  } else {
    if (s.step === "error") {
      showError(s.error ?? "", "error", [], s.title);
    } else if (s.step === "ready") {
      recv.viewReady();
      $("receive").focus({ preventScroll: true });
    } else {
      connect();
      const mode = s.mode ?? "folder";
      const card = recv.viewOffer(man, mode);
      if (s.step === "review") ($("accept") as HTMLButtonElement).focus({ preventScroll: true });
      if (s.step === "transferring" || s.step === "done") {
        recv.viewReceiving(man, mode);
        card.update(progress, s.rate ?? 0);
      }
      if (s.step === "done") recv.viewDone(card, roots, man, mode);
    }
  }
  document.body.dataset.scene = "ready";
}
