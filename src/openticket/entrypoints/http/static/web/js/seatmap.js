// The seat map: an inline SVG of a session's seats by area and row, coloured by price
// category and status, usable with a pointer or the keyboard (one seat in the tab
// order at a time; the arrow keys move between seats).

const SVG_NS = "http://www.w3.org/2000/svg";
const SEAT = 24;
const GAP = 6;
const ROW_LABEL = 34;
const AREA_LABEL = 30;
const AREA_GAP = 26;
const STAGE = 44;
const CATEGORY_CLASSES = 6;

/** A price as the map says it: {amount: "1200.00", currency: "TWD"} -> "TWD 1,200.00". */
export function priceText(price) {
  if (!price) return "not on sale";
  const [whole, fraction = "00"] = String(price.amount).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${price.currency} ${grouped}.${fraction.padEnd(2, "0")}`;
}

/** The colour class of category `index` (cycling through the palette), or of no price. */
export function categoryClass(index) {
  return index === undefined ? "cat-none" : `cat-${index % CATEGORY_CLASSES}`;
}

function svg(name, attributes = {}) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
  return el;
}

/** Areas in their first-seen order, each with its rows, each with its seats by number. */
function layout(seats) {
  const areas = new Map();
  for (const seat of seats) {
    if (!areas.has(seat.area_id)) areas.set(seat.area_id, new Map());
    const rows = areas.get(seat.area_id);
    if (!rows.has(seat.row)) rows.set(seat.row, []);
    rows.get(seat.row).push(seat);
  }
  for (const rows of areas.values()) {
    for (const row of rows.values()) row.sort((a, b) => a.number - b.number);
  }
  return areas;
}

export class SeatMap {
  /**
   * Draw `seats` (from GET /api/sessions/{id}/seats) into `element`.
   * `areaNames`: area_id -> name; `categoryOf`: price text -> category index (colour);
   * `onActivate(seat)` when a seat is clicked or Enter/Space pressed on it.
   */
  constructor(element, seats, { areaNames = new Map(), categoryOf = new Map(), onActivate }) {
    this.element = element;
    this.seats = new Map();
    this.rows = [];
    this.onActivate = onActivate;
    this.draw(seats, areaNames, categoryOf);
    element.addEventListener("click", (e) => {
      const seat = this.seatOf(e.target);
      if (seat) { this.focus(seat.id); this.onActivate(seat); }
    });
    element.addEventListener("keydown", (e) => this.key(e));
  }

  draw(seats, areaNames, categoryOf) {
    const areas = layout(seats);
    const widest = Math.max(1, ...[...areas.values()].flatMap((rows) => [...rows.values()].map((r) => r.length)));
    const width = ROW_LABEL * 2 + widest * (SEAT + GAP);
    const defs = svg("defs");
    const hatch = svg("pattern", { id: "held-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    hatch.append(svg("rect", { width: 6, height: 6, class: "hatch-ground" }), svg("rect", { width: 3, height: 6, class: "hatch-line" }));
    defs.append(hatch);
    this.element.append(defs);
    const stage = svg("g", { "aria-hidden": "true" });
    stage.append(
      svg("rect", { x: ROW_LABEL, y: 4, width: width - ROW_LABEL * 2, height: 26, rx: 6, class: "stage" }),
    );
    const stageText = svg("text", { x: width / 2, y: 22, class: "stage-label", "text-anchor": "middle" });
    stageText.textContent = "Stage";
    stage.append(stageText);
    this.element.append(stage);

    let y = STAGE;
    for (const [areaId, rows] of areas) {
      const name = areaNames.get(areaId) || `Area ${areaId}`;
      const group = svg("g", { role: "group", "aria-label": `${name} (area ${areaId})`, "data-area-id": areaId });
      const label = svg("text", { x: width / 2, y: y + 20, class: "area-label", "text-anchor": "middle", "aria-hidden": "true" });
      label.textContent = `${name} · area ${areaId}`;
      group.append(label);
      y += AREA_LABEL;
      for (const [rowName, rowSeats] of rows) {
        const rowWidth = rowSeats.length * (SEAT + GAP) - GAP;
        let x = (width - rowWidth) / 2;
        for (const side of [ROW_LABEL / 2, width - ROW_LABEL / 2]) {
          const rowLabel = svg("text", { x: side, y: y + SEAT / 2 + 5, class: "row-label", "text-anchor": "middle", "aria-hidden": "true" });
          rowLabel.textContent = rowName;
          group.append(rowLabel);
        }
        const drawn = [];
        for (const seat of rowSeats) {
          const el = svg("rect", {
            x, y, width: SEAT, height: SEAT, rx: 6,
            class: `seat ${categoryClass(categoryOf.get(priceText(seat.price)))}`,
            role: "button", tabindex: "-1", "aria-pressed": "false",
            "data-seat-id": seat.seat_id,
          });
          const entry = { id: seat.seat_id, seat, el, x, row: this.rows.length };
          this.seats.set(seat.seat_id, entry);
          drawn.push(entry);
          this.setStatus(seat.seat_id, seat.status);
          group.append(el);
          x += SEAT + GAP;
        }
        this.rows.push(drawn);
        y += SEAT + GAP;
      }
      this.element.append(group);
      y += AREA_GAP;
    }
    this.element.setAttribute("viewBox", `0 0 ${width} ${y}`);
    const first = this.rows.flat().find((s) => s.seat.status === "available") || this.rows.flat()[0];
    if (first) first.el.setAttribute("tabindex", "0");
  }

  seatOf(target) {
    const id = target?.closest?.("[data-seat-id]")?.dataset.seatId;
    return id ? this.seats.get(id) : undefined;
  }

  status(id) { return this.seats.get(id)?.seat.status; }

  label(entry) {
    const { seat } = entry;
    return `Seat ${seat.seat_id}, area ${seat.area_id} row ${seat.row} number ${seat.number}, ${priceText(seat.price)}, ${seat.status}`;
  }

  /** A seat's status changed (feed): returns the previous status. */
  setStatus(id, status) {
    const entry = this.seats.get(id);
    if (!entry) return undefined;
    const before = entry.seat.status;
    entry.seat.status = status;
    entry.el.dataset.status = status;
    entry.el.setAttribute("aria-label", this.label(entry));
    if (status === "available") entry.el.removeAttribute("aria-disabled");
    else entry.el.setAttribute("aria-disabled", "true");
    return before;
  }

  setPicked(id, picked) { this.seats.get(id)?.el.setAttribute("aria-pressed", picked ? "true" : "false"); }

  setMine(id, mine) {
    const entry = this.seats.get(id);
    if (!entry) return;
    if (mine) entry.el.dataset.mine = "true";
    else delete entry.el.dataset.mine;
  }

  focus(id) {
    const entry = this.seats.get(id);
    if (!entry) return;
    for (const other of this.element.querySelectorAll('[data-seat-id][tabindex="0"]')) other.setAttribute("tabindex", "-1");
    entry.el.setAttribute("tabindex", "0");
    entry.el.focus();
  }

  key(e) {
    const entry = this.seatOf(e.target);
    if (!entry) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.onActivate(entry);
      return;
    }
    const row = this.rows[entry.row];
    const index = row.indexOf(entry);
    let next;
    if (e.key === "ArrowRight") next = row[index + 1];
    else if (e.key === "ArrowLeft") next = row[index - 1];
    else if (e.key === "Home") next = row[0];
    else if (e.key === "End") next = row[row.length - 1];
    else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      const other = this.rows[entry.row + (e.key === "ArrowUp" ? -1 : 1)];
      if (other) next = other.reduce((best, s) => (Math.abs(s.x - entry.x) < Math.abs(best.x - entry.x) ? s : best));
    } else return;
    e.preventDefault();
    if (next) this.focus(next.id);
  }
}
