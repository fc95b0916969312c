// Entry point of both pages.
import { receivePage } from "./ui/receive_page";
import { sendPage } from "./ui/send_page";

if (document.body.dataset.page === "receive") receivePage();
else sendPage();
