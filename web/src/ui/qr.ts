// QR code of the link as an SVG path (no inline styles, so it works under
// the strict CSP). uqr was chosen over qrcode-generator and lean-qr: all
// three decode correctly (checked with zbarimg); uqr is small (10 kB
// minified) and widely used.
import { encode } from "uqr";

const svgNS = "http://www.w3.org/2000/svg";

export function qrSVG(text: string): SVGSVGElement {
  const q = encode(text, { ecc: "M", border: 4 });
  const n = q.size;
  let d = "";
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) if (q.data[y]![x]) d += `M${x} ${y}h1v1h-1z`;
  }
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${n} ${n}`);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the link");
  const bg = document.createElementNS(svgNS, "rect");
  bg.setAttribute("width", String(n));
  bg.setAttribute("height", String(n));
  bg.setAttribute("fill", "#fff");
  const path = document.createElementNS(svgNS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}
