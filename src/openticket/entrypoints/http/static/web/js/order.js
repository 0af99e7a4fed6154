// One of the buyer's orders, its status live (LINE Pay sends the buyer back here).
import { api, liveFeed, requireSignIn } from "./api.js";
import { priceText } from "./seatmap.js";

const root = document.getElementById("order");
const orderId = root.dataset.orderId;
const $ = (id) => document.getElementById(id);
const STATUS = {
  created: ["Seats held", "Your seats are held: pay before the hold runs out."],
  payment_pending: ["Payment in progress", "Waiting for the payment provider to confirm the payment."],
  completed: ["Paid", "Paid: your tickets are ready."],
  expired: ["Expired", "The hold ran out before the payment; the seats are free again."],
  failed: ["Payment failed", "The payment did not go through; the seats are free again."],
  cancelled: ["Cancelled", "The order was cancelled; the seats are free again."],
  refunded: ["Refunded", "The order was refunded; its tickets are void."],
};
let order = null;

function show(status) {
  const [label, explain] = STATUS[status] || [status, ""];
  $("order-status").textContent = label;
  $("order-status").dataset.status = status;
  $("order-explain").textContent = explain;
  $("see-tickets").hidden = status !== "completed";
  const open = status === "created" || status === "payment_pending";
  $("order-expires-label").hidden = !open;
  $("order-expires").hidden = !open;
  $("back-to-session").textContent = open ? "Back to the seat map to pay" : "Back to the seat map";
}

async function load() {
  try {
    order = await api(`/api/orders/${orderId}`);
  } catch (e) {
    $("order-error").textContent = e.status === 404 ? "There is no such order of yours." : e.message;
    $("order-error").hidden = false;
    $("order-status").textContent = "unknown";
    return;
  }
  $("order-seats").textContent = order.items.map((i) => `${i.seat_id} (${priceText(i.price)})`).join(", ");
  $("order-total").textContent = priceText(order.total);
  $("order-expires").textContent = new Date(order.expires_at).toLocaleString(undefined, { timeStyle: "medium", dateStyle: "medium" });
  $("order-facts").hidden = false;
  const back = $("back-to-session");
  back.href = `/sessions/${order.session_id}`;
  back.hidden = false;
  show(order.status);
}

if (requireSignIn()) {
  load();
  liveFeed("/ws/me/orders", {
    withToken: true,
    onMessage: (m) => {
      if (m.type === "hello") load(); // a change before the feed opened is not missed
      else if (m.type === "order" && m.order_id === orderId) show(m.status);
    },
  });
}
