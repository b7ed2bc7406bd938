# Internet-facing ALB in the public subnets, one target group for the API.

resource "aws_lb" "main" {
  #checkov:skip=CKV_AWS_91:No S3 access-log bucket in this stack. The API logs every request as JSON (request_id, route, status, latency) to Datadog, and ALB-generated errors (502/503/504) are ALB metrics with their own monitor. Add access_logs with a bucket if an audit trail of raw ALB requests is required.
  name                       = "${local.name}-alb"
  internal                   = false
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = aws_subnet.public[*].id
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB. The hop from the ALB to the task stays inside the VPC, restricted by security groups to ALB -> API on 8080; the binary serves plain HTTP and would need its own certificate otherwise.
  name        = "${local.name}-api"
  port        = local.api_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id

  # Requests finish within REQUEST_TIMEOUT_MS (10 s); 30 s drains them on deploys.
  deregistration_delay = 30

  health_check {
    # Liveness only: /healthz never touches the database (spec section 3,
    # lesson of the incident where a DB-dependent check made ECS kill healthy
    # tasks in a loop). /readyz is for humans and smoke tests.
    path                = "/healthz"
    matcher             = "200"
    protocol            = "HTTP"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

# Port 80: forwards to the API in the PoC; redirects to HTTPS once a certificate is set.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:PoC mode has no domain or ACM certificate, so port 80 serves the API. Setting acm_certificate_arn (required by production_hardening) turns this listener into a 301 redirect to the HTTPS listener.
  #checkov:skip=CKV_AWS_103:Same listener as above: TLS is terminated on the HTTPS listener (ELBSecurityPolicy-TLS13-1-2-2021-06) when a certificate is configured.
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.api.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = !local.hardening || local.https
      error_message = "production_hardening requires acm_certificate_arn (HTTPS on the ALB)."
    }
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.acm_certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}
